package org

import (
	"regexp"
	"strings"
	"time"
)

var mobile = regexp.MustCompile(`^1[3-9][0-9]{9}$`)

// ValidMobile reports whether s is a mainland mobile number (11 digits, 13x–19x).
func ValidMobile(s string) bool { return mobile.MatchString(s) }

// MobileProblem is how a field that must hold a mobile number is explained.
const MobileProblem = "a mainland mobile number (11 digits starting with 1)"

// IDCardProblem is how a field that must hold an ID-card number is explained.
const IDCardProblem = "an 18-character resident ID-card number whose check character is right (ISO 7064 MOD 11-2)"

var idCard = regexp.MustCompile(`^[1-9][0-9]{16}[0-9X]$`)

// ValidIDCard reports whether s is a mainland resident ID-card number (GB 11643): 17
// digits — region, birth date, sequence — and the ISO 7064 MOD 11-2 check character
// (0–9 or X). A lower-case x is not accepted here; NormalizeIDCard upper-cases it.
func ValidIDCard(s string) bool {
	if !idCard.MatchString(s) {
		return false
	}
	if _, err := time.Parse("20060102", s[6:14]); err != nil {
		return false
	}
	return s[17] == IDCardCheck(s[:17])
}

// IDCardCheck is the check character of the first 17 digits: Σ digit×(2^(17−i) mod 11),
// then (12 − sum mod 11) mod 11, written X for 10.
func IDCardCheck(first17 string) byte {
	sum := 0
	w := 1
	for i := 16; i >= 0; i-- {
		w = w * 2 % 11
		sum += int(first17[i]-'0') * w
	}
	c := (12 - sum%11) % 11
	if c == 10 {
		return 'X'
	}
	return byte('0' + c)
}

// NormalizeIDCard trims and upper-cases an ID-card number as typed.
func NormalizeIDCard(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// MaskPhone keeps the first 3 and last 4 digits of a phone number.
func MaskPhone(p string) string {
	if len(p) < 8 {
		return p
	}
	return p[:3] + "****" + p[len(p)-4:]
}

// MaskIDCard keeps the region (first 6) and the last 4 characters of an ID-card number.
func MaskIDCard(s string) string {
	if len(s) != 18 {
		return strings.Repeat("*", len(s))
	}
	return s[:6] + "********" + s[14:]
}
