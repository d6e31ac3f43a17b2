// Package household owns the ledgers grid workers keep of the places they serve:
// households 户 with their residents (permanent or floating 流动人口, tagged as elderly
// living alone, disabled, …) and the organisations 企事业单位 located in a grid.
//
// This first part stores the records and imports them (the demo city, migrations);
// editing them offline, encrypted personal data and visit plans build on it.
package household

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
)

// Collections.
const (
	Coll    = "households"
	OrgColl = "organisations"
)

// Commands.
const (
	// CmdImport stores a complete household as given (system only, idempotent).
	CmdImport = "household.import"
	// CmdImportOrg stores an organisation as given (system only, idempotent).
	CmdImportOrg = "organisation.import"
)

// Tags a household or a resident may carry.
var Tags = []string{"elderly_alone", "disabled", "low_income", "key_person", "party_member", "veteran", "child_left_behind"}

// Member is one resident of a household.
type Member struct {
	ResidentID string   `json:"residentId,omitempty" bson:"residentId,omitempty"`
	Name       string   `json:"name" bson:"name"`
	Relation   string   `json:"relation" bson:"relation"` // head, spouse, child, parent, tenant, …
	Floating   bool     `json:"floating" bson:"floating"` // 流动人口: lives here without local registration
	Tags       []string `json:"tags,omitempty" bson:"tags,omitempty"`
	Gender     string   `json:"gender,omitempty" bson:"gender,omitempty"`
	BirthDate  string   `json:"birthDate,omitempty" bson:"birthDate,omitempty"`
	// IDCard and Phone are personal data: sealed in the database, masked everywhere
	// else (see personal.go).
	IDCard string `json:"idCard,omitempty" bson:"idCard,omitempty"`
	Phone  string `json:"phone,omitempty" bson:"phone,omitempty"`
}

// Household is one dwelling and the people in it.
type Household struct {
	ID       string   `json:"id" bson:"_id"`
	GridID   string   `json:"gridId" bson:"gridId"`
	Building string   `json:"building" bson:"building"`
	Unit     string   `json:"unit" bson:"unit"`
	Room     string   `json:"room" bson:"room"`
	Address  string   `json:"address" bson:"address"`
	Members  []Member `json:"members" bson:"members"`
	Tags     []string `json:"tags,omitempty" bson:"tags,omitempty"`
	// LastVisitAt is the latest visit logged (visit.go); the next is due from it.
	LastVisitAt *time.Time `json:"lastVisitAt,omitempty" bson:"lastVisitAt,omitempty"`
	CreatedAt   time.Time  `json:"createdAt" bson:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt" bson:"updatedAt"`
	Version     int64      `json:"version" bson:"version"`
}

// Organisation is an enterprise or institution located in a grid.
type Organisation struct {
	ID      string `json:"id" bson:"_id"`
	GridID  string `json:"gridId" bson:"gridId"`
	Name    string `json:"name" bson:"name"`
	Kind    string `json:"kind" bson:"kind"` // enterprise, school, clinic, shop, government
	Address string `json:"address" bson:"address"`
	Contact string `json:"contact,omitempty" bson:"contact,omitempty"`
	Version int64  `json:"version" bson:"version"`
}

// Register adds the household commands to the write path.
func Register(r *command.Registry) {
	r.Own(Coll, OrgColl)
	r.Register(CmdImport, command.Handler{Apply: applyImport, Keys: command.ArgKey(Coll, "id")})
	r.Register(CmdImportOrg, command.Handler{Apply: applyImportOrg, Keys: command.ArgKey(OrgColl, "id")})
	r.Register(CmdReseal, command.Handler{Apply: applyReseal, Keys: command.ArgKey(Coll, "householdId")})
	r.Own(VisitColl)
	r.Register(CmdVisit, command.Handler{Apply: applyVisit, Keys: command.ArgKey(Coll, "householdId")})
}

func validGrid(id, grid string) error {
	f := fault.Fields{}
	if !command.ValidToken(id) {
		f.Add("id", "1 to 128 of a-z A-Z 0-9 - _")
	}
	if l, err := org.LevelOf(grid); err != nil || l != org.Grid {
		f.Add("gridId", "a grid code")
	}
	return f.Err("invalid_args", "invalid record")
}

func applyImport(tx *command.Tx, c *command.Command) error {
	if !c.Actor.System {
		return fault.New(fault.Forbidden, "forbidden", "household.import is for the server only")
	}
	var h Household
	if err := json.Unmarshal(c.Args, &h); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "a complete household")
	}
	if err := validGrid(h.ID, h.GridID); err != nil {
		return err
	}
	for _, t := range h.Tags {
		if !slices.Contains(Tags, t) {
			return fault.New(fault.Invalid, "invalid_args", "unknown tag "+t)
		}
	}
	for i := range h.Members {
		if err := checkPersonal(&h.Members[i]); err != nil {
			return fault.New(fault.Invalid, "invalid_args", fmt.Sprintf("members[%d].%v", i, err))
		}
	}
	var old Household
	if found, err := tx.Get(Coll, h.ID, &old); err != nil || found {
		return err // importing twice changes nothing
	}
	ms, err := sealMembers(h.ID, c.ID, h.Members, nil)
	if err != nil {
		return err
	}
	h.Members = ms
	h.Version = 1
	return tx.Put(command.Record{Coll: Coll, ID: h.ID, Version: 1, Path: org.PathSubject(h.GridID), Doc: h, Wire: h.Wire()})
}

func applyImportOrg(tx *command.Tx, c *command.Command) error {
	if !c.Actor.System {
		return fault.New(fault.Forbidden, "forbidden", "organisation.import is for the server only")
	}
	var o Organisation
	if err := json.Unmarshal(c.Args, &o); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "a complete organisation")
	}
	if err := validGrid(o.ID, o.GridID); err != nil {
		return err
	}
	var old Organisation
	if found, err := tx.Get(OrgColl, o.ID, &old); err != nil || found {
		return err
	}
	o.Version = 1
	return tx.Put(command.Record{Coll: OrgColl, ID: o.ID, Version: 1, Path: org.PathSubject(o.GridID), Doc: o, Wire: o})
}
