package org

import "time"

// Unit is a node of the tree.
type Unit struct {
	ID     string // hierarchical code
	Name   string
	Level  Level
	Parent string
}

// User is a person who logs in.
type User struct {
	ID           string // login, lower case, immutable
	Name         string
	Roles        []string
	UnitID       string
	PasswordHash string
	Disabled     bool
	CreatedAt    time.Time
}

// Actor returns the user as an actor on a device.
func (u User) Actor(deviceID string) Actor {
	return Actor{UserID: u.ID, Name: u.Name, Roles: u.Roles, UnitID: u.UnitID, DeviceID: deviceID}
}
