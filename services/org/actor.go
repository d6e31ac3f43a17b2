package org

import (
	"slices"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
)

// Roles. The grid roles are the "one leader, four members" 一长四员 plus building
// leaders; together they are the grid workers.
const (
	RoleGridLeader     = "grid_leader"     // 网格长
	RoleGridManager    = "grid_manager"    // 网格管理员
	RoleGridPolice     = "grid_police"     // 网格警员
	RoleGridSupervisor = "grid_supervisor" // 网格监督员
	RoleInfoCollector  = "info_collector"  // 民情信息员
	RoleBuildingLeader = "building_leader" // 楼栋长
	RoleDispatcher     = "dispatcher"      // 社区调度员 and dispatchers above
	RoleHandler        = "handler"         // 处置人员
	RoleSupervisor     = "supervisor"      // 督办
	RoleLeader         = "leader"          // unit leader: approves refusals and delays
	RoleDiscipline     = "discipline"      // 纪工委
	RoleAdmin          = "admin"
)

// GridRoles are the roles of grid workers.
var GridRoles = []string{RoleGridLeader, RoleGridManager, RoleGridPolice, RoleGridSupervisor, RoleInfoCollector, RoleBuildingLeader}

// AllRoles lists every role.
var AllRoles = append(slices.Clone(GridRoles), RoleDispatcher, RoleHandler, RoleSupervisor, RoleLeader, RoleDiscipline, RoleAdmin)

// ValidRole reports whether r is a known role.
func ValidRole(r string) bool { return slices.Contains(AllRoles, r) }

// Actor is who performs an action, as the server established it at the time the
// action was made (commands carry it, so a queued mutation is judged by the rights
// its author had when making it).
type Actor struct {
	UserID   string   `json:"userId"`
	Name     string   `json:"name,omitempty"`
	Roles    []string `json:"roles"`
	UnitID   string   `json:"unitId"`
	DeviceID string   `json:"deviceId,omitempty"`
	// System marks the server itself (router, timers, seeding).
	System bool `json:"system,omitempty"`
}

// SystemActor is the server acting on its own behalf.
func SystemActor(what string) Actor {
	return Actor{UserID: "system:" + what, Name: what, System: true}
}

// Has reports whether the actor holds any of roles.
func (a Actor) Has(roles ...string) bool {
	for _, r := range roles {
		if slices.Contains(a.Roles, r) {
			return true
		}
	}
	return false
}

// IsGridWorker reports whether the actor holds a grid role.
func (a Actor) IsGridWorker() bool { return a.Has(GridRoles...) }

// Sees reports whether unit is inside the actor's subtree. The system sees all.
func (a Actor) Sees(unit string) bool {
	return a.System || Contains(a.UnitID, unit)
}

// Area returns the unit a query about unit is answered for: unit, or the actor's home
// unit when empty — refused when it is not a unit code, or lies outside the actor's
// subtree.
func (a Actor) Area(unit string) (string, error) {
	if unit == "" {
		unit = a.UnitID
	}
	if !ValidCode(unit) {
		return "", fault.New(fault.Invalid, "invalid_request", "unit: a unit code")
	}
	if !a.Sees(unit) {
		return "", fault.New(fault.Forbidden, "out_of_scope", "the unit is outside the caller's area")
	}
	return unit, nil
}
