// Package volunteer owns volunteer service: teams 志愿服务队 and the service activities
// they hold, on which love points 爱心积分 are earned.
//
// This first part stores teams and activities and imports them (the demo city);
// recording activities from handsets, the points ledger and the love supermarket build
// on it.
package volunteer

import (
	"encoding/json"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
)

// Collections.
const (
	TeamColl     = "teams"
	ActivityColl = "activities"
)

// Commands (system only, idempotent).
const (
	CmdImportTeam     = "volunteer.importTeam"
	CmdImportActivity = "volunteer.importActivity"
)

// Team is a volunteer team of a community.
type Team struct {
	ID          string   `json:"id" bson:"_id"`
	CommunityID string   `json:"communityId" bson:"communityId"`
	Name        string   `json:"name" bson:"name"`
	Services    []string `json:"services" bson:"services"` // 义务诊疗, 家电维修, …
	Members     []string `json:"members" bson:"members"`   // volunteer names
	Version     int64    `json:"version" bson:"version"`
}

// Activity is one service activity held by a team.
type Activity struct {
	ID          string    `json:"id" bson:"_id"`
	TeamID      string    `json:"teamId" bson:"teamId"`
	CommunityID string    `json:"communityId" bson:"communityId"`
	Title       string    `json:"title" bson:"title"`
	At          time.Time `json:"at" bson:"at"`
	Hours       float64   `json:"hours" bson:"hours"`
	Volunteers  int       `json:"volunteers" bson:"volunteers"`
	Served      int       `json:"served" bson:"served"` // residents served 服务群众人次
	Version     int64     `json:"version" bson:"version"`
	// Recorded from a phone (volunteer.recordActivity): the kind the points rate
	// follows, who took part for how long and what they earned.
	Kind         string        `json:"kind,omitempty" bson:"kind,omitempty"`
	EndedAt      time.Time     `json:"endedAt,omitzero" bson:"endedAt,omitempty"`
	Participants []Participant `json:"participants,omitempty" bson:"participants,omitempty"`
	Note         string        `json:"note,omitempty" bson:"note,omitempty"`
	Photos       []string      `json:"photos,omitempty" bson:"photos,omitempty"`
	By           string        `json:"by,omitempty" bson:"by,omitempty"`
}

// Register adds the volunteer commands to the write path.
func Register(r *command.Registry) {
	r.Own(TeamColl, ActivityColl)
	r.Register(CmdImportTeam, command.Handler{Apply: applyTeam, Keys: command.ArgKey(TeamColl, "id")})
	r.Register(CmdImportActivity, command.Handler{Apply: applyActivity, Keys: command.ArgKey(ActivityColl, "id")})
}

func check(c *command.Command, id, community string) error {
	if !c.Actor.System {
		return fault.New(fault.Forbidden, "forbidden", c.Name+" is for the server only")
	}
	if !command.ValidToken(id) {
		return fault.New(fault.Invalid, "invalid_args", "id: 1 to 128 of a-z A-Z 0-9 - _")
	}
	if l, err := org.LevelOf(community); err != nil || l != org.Community {
		return fault.New(fault.Invalid, "invalid_args", "communityId: a community code")
	}
	return nil
}

func applyTeam(tx *command.Tx, c *command.Command) error {
	var t Team
	if err := json.Unmarshal(c.Args, &t); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "a complete team")
	}
	if err := check(c, t.ID, t.CommunityID); err != nil {
		return err
	}
	var old Team
	if found, err := tx.Get(TeamColl, t.ID, &old); err != nil || found {
		return err
	}
	t.Version = 1
	return tx.Put(command.Record{Coll: TeamColl, ID: t.ID, Version: 1, Path: org.PathSubject(t.CommunityID), Doc: t, Wire: t})
}

func applyActivity(tx *command.Tx, c *command.Command) error {
	var a Activity
	if err := json.Unmarshal(c.Args, &a); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "a complete activity")
	}
	if err := check(c, a.ID, a.CommunityID); err != nil {
		return err
	}
	if a.Hours < 0 || a.Hours > 24 || a.Served < 0 || a.Volunteers < 0 {
		return fault.New(fault.Invalid, "invalid_args", "hours 0..24, counts not negative")
	}
	var old Activity
	if found, err := tx.Get(ActivityColl, a.ID, &old); err != nil || found {
		return err
	}
	a.Version = 1
	return tx.Put(command.Record{Coll: ActivityColl, ID: a.ID, Version: 1, Path: org.PathSubject(a.CommunityID), Doc: a, Wire: a})
}
