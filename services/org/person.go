package org

import "regexp"

var mobile = regexp.MustCompile(`^1[3-9][0-9]{9}$`)

// ValidMobile reports whether s is a mainland mobile number (11 digits, 13x–19x).
func ValidMobile(s string) bool { return mobile.MatchString(s) }

// MobileProblem is how a field that must hold a mobile number is explained.
const MobileProblem = "a mainland mobile number (11 digits starting with 1)"
