package household

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/pkg/seal"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Residents' ID-card and phone numbers are personal data. In the database they are
// sealed (AES-256-GCM, pkg/seal), each bound to its household, resident and field; on
// the change feed, and so on every phone and in every response, they are masked
// (110105********002X, 138****5678). Only roles that need them read them in clear, one
// household at a time with a reason, and every such read is written to the access log
// the discipline officer reads.

// Keys is the keyring the write path seals with; set once at start.
var Keys *seal.Keyring

// PersonalRoles may read personal data in clear: those who visit residents and check
// who they are.
var PersonalRoles = []string{org.RoleGridManager, org.RoleGridLeader, org.RoleGridPolice, org.RoleSupervisor}

func where(householdID, residentID, field string) string {
	return householdID + "/" + residentID + "/" + field
}

func masked(v string) bool { return strings.Contains(v, "*") }

// checkPersonal validates a member's personal fields as sent (clear, or a mask the
// handset kept from its copy).
func checkPersonal(m *Member) error {
	m.IDCard = org.NormalizeIDCard(m.IDCard)
	if m.IDCard != "" && m.IDCard != ClearValue && !masked(m.IDCard) && !org.ValidIDCard(m.IDCard) {
		return fmt.Errorf("idCard: %s", org.IDCardProblem)
	}
	m.Phone = strings.TrimSpace(m.Phone)
	if m.Phone != "" && m.Phone != ClearValue && !masked(m.Phone) && !org.ValidMobile(m.Phone) {
		return fmt.Errorf("phone: %s", org.MobileProblem)
	}
	if m.ResidentID != "" && !command.ValidToken(m.ResidentID) {
		return fmt.Errorf("residentId: 1 to 128 of a-z A-Z 0-9 - _")
	}
	if m.Gender != "" && m.Gender != "male" && m.Gender != "female" {
		return fmt.Errorf("gender: male or female")
	}
	if m.BirthDate != "" {
		if _, err := time.Parse("2006-01-02", m.BirthDate); err != nil {
			return fmt.Errorf("birthDate: YYYY-MM-DD")
		}
	}
	return nil
}

// sealMembers turns the members as sent into the members to store: clear values
// sealed; a masked value — the handset sends back what it was given — keeps the value
// stored for that resident, if it is the same number masked; an empty value keeps the
// stored one too (a handset that predates the field must not erase it), and "-" clears
// it. A resident sent without an id is matched to a stored one of the same name, or
// given a new id.
func sealMembers(householdID, cmdID string, next, old []Member) ([]Member, error) {
	if Keys == nil {
		return nil, fault.New(fault.Unavailable, "no_keys", "personal data cannot be stored: no data key")
	}
	prev := map[string]Member{}
	for _, m := range old {
		prev[m.ResidentID] = m
	}
	taken := map[string]bool{}
	for _, m := range next {
		taken[m.ResidentID] = true
	}
	out := make([]Member, len(next))
	for i, m := range next {
		if m.ResidentID == "" {
			for _, o := range old {
				if o.Name == m.Name && o.ResidentID != "" && !taken[o.ResidentID] {
					m.ResidentID = o.ResidentID
					taken[o.ResidentID] = true
					break
				}
			}
		}
		if m.ResidentID == "" {
			m.ResidentID = uuid.NewSHA1(residentSpace, []byte(fmt.Sprintf("%s|%s|%d", householdID, cmdID, i))).String()
		}
		before := prev[m.ResidentID]
		was := before.numbers()
		for k, f := range m.numbers() {
			f.was = *was[k].v
			switch {
			case *f.v == "":
				*f.v = f.was
			case *f.v == ClearValue:
				*f.v = ""
			case seal.Sealed(*f.v):
				return nil, fault.New(fault.Invalid, "invalid_args", "members: "+f.name+" is a number, not a sealed value")
			case masked(*f.v):
				clear, err := Keys.Open(f.was, where(householdID, m.ResidentID, f.name))
				if err != nil || f.was == "" || f.mask(clear) != *f.v {
					return nil, fault.New(fault.Invalid, "invalid_args", "members: "+f.name+" is masked but matches no stored number of this resident: send the number")
				}
				*f.v = f.was
			default:
				*f.v = Keys.Seal(*f.v, where(householdID, m.ResidentID, f.name))
			}
		}
		out[i] = m
	}
	return out, nil
}

// ClearValue, sent as a resident's ID-card or phone number, removes the stored one.
const ClearValue = "-"

var residentSpace = uuid.MustParse("0b9d3f6e-52c1-4b8e-9a77-3e1f0c2d4b5a")

// number is one of a resident's personal numbers: its field, where it is held, how it
// is masked (and, while merging an edit, the value stored before).
type number struct {
	name string
	v    *string
	mask func(string) string
	was  string
}

// numbers are m's personal numbers.
func (m *Member) numbers() [2]number {
	return [2]number{{name: "idCard", v: &m.IDCard, mask: org.MaskIDCard}, {name: "phone", v: &m.Phone, mask: org.MaskPhone}}
}

// maskMembers returns members as anyone may see them: personal numbers masked.
func maskMembers(householdID string, ms []Member) []Member {
	out := make([]Member, len(ms))
	for i, m := range ms {
		for _, f := range m.numbers() {
			if *f.v != "" {
				*f.v = maskSealed(*f.v, where(householdID, m.ResidentID, f.name), f.mask)
			}
		}
		out[i] = m
	}
	return out
}

func maskSealed(v, at string, mask func(string) string) string {
	if !seal.Sealed(v) {
		return mask(v)
	}
	if Keys != nil {
		if clear, err := Keys.Open(v, at); err == nil {
			return mask(clear)
		}
	}
	return "********"
}

// Wire is the household as handsets and responses carry it: personal data masked.
func (h Household) Wire() Household {
	h.Members = maskMembers(h.ID, h.Members)
	return h
}

// CmdReseal re-seals a household's personal data with the current key (after a key
// rotation); system only.
const CmdReseal = "household.reseal"

func applyReseal(tx *command.Tx, c *command.Command) error {
	if !c.Actor.System {
		return fault.New(fault.Forbidden, "forbidden", "household.reseal is for the server only")
	}
	var a struct {
		HouseholdID string `json:"householdId"`
	}
	if err := json.Unmarshal(c.Args, &a); err != nil || !command.ValidToken(a.HouseholdID) {
		return fault.New(fault.Invalid, "invalid_args", "householdId")
	}
	var st stored
	found, err := tx.Get(Coll, a.HouseholdID, &st)
	if err != nil || !found {
		return err
	}
	changed := false
	for i := range st.Members {
		m := &st.Members[i]
		for _, f := range m.numbers() {
			if *f.v == "" || seal.KeyOf(*f.v) == Keys.Current() {
				continue
			}
			at := where(st.ID, m.ResidentID, f.name)
			clear := *f.v
			if seal.Sealed(clear) {
				if clear, err = Keys.Open(*f.v, at); err != nil {
					return fault.New(fault.Unprocessable, "cannot_open", fmt.Sprintf("household %s: %v", st.ID, err))
				}
			}
			*f.v = Keys.Seal(clear, at)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	// The same version: the record as handsets see it has not changed.
	return tx.Put(command.Record{Coll: Coll, ID: st.ID, Version: st.Version, Path: org.PathSubject(st.GridID), Doc: st, Wire: st.Household.Wire()})
}

// Access is one read of personal data in clear, as the access log keeps it.
type Access struct {
	At          time.Time `json:"at"`
	UserID      string    `json:"userId"`
	DeviceID    string    `json:"deviceId"`
	Roles       []string  `json:"roles"`
	UnitID      string    `json:"unitId"` // the reader's
	HouseholdID string    `json:"householdId"`
	GridID      string    `json:"gridId"`
	Residents   int       `json:"residents"`
	Reason      string    `json:"reason"`
}

// Personal reads personal data in clear: one household, for PersonalRoles in whose
// area it is, with a reason. The read is logged before the data is returned; no log,
// no data.
func (s *Service) Personal(ctx context.Context, a org.Actor, id, reason string) (*Household, error) {
	reason = strings.TrimSpace(reason)
	if !a.Has(PersonalRoles...) {
		return nil, fault.New(fault.Forbidden, "forbidden", "this role does not read personal data in clear")
	}
	if reason == "" || len([]rune(reason)) > 200 {
		return nil, fault.New(fault.Invalid, "reason_required", "reason: why the numbers are needed (1 to 200 characters)")
	}
	var st stored
	err := s.DB.Collection(Coll).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&st)
	if err != nil || !a.Sees(st.GridID) {
		return nil, fault.New(fault.NotFound, "not_found", "no such household")
	}
	h := st.Household
	h.Members = make([]Member, len(st.Members))
	for i, m := range st.Members {
		for _, f := range m.numbers() {
			if seal.Sealed(*f.v) {
				clear, err := Keys.Open(*f.v, where(h.ID, m.ResidentID, f.name))
				if err != nil {
					return nil, fault.Wrap(err, "open personal data")
				}
				*f.v = clear
			}
		}
		h.Members[i] = m
	}
	entry := Access{At: time.Now().UTC(), UserID: a.UserID, DeviceID: a.DeviceID, Roles: a.Roles, UnitID: a.UnitID,
		HouseholdID: h.ID, GridID: h.GridID, Residents: len(h.Members), Reason: reason}
	data, _ := json.Marshal(entry)
	m := nats.NewMsg(s.Names.AuditSubject(org.PathSubject(h.GridID), a.UserID))
	m.Data = data
	if _, err := s.JS.PublishMsg(ctx, m); err != nil {
		return nil, fault.Wrap(err, "write the access log")
	}
	h.CreatedAt, h.UpdatedAt = h.CreatedAt.UTC(), h.UpdatedAt.UTC()
	return &h, nil
}

// AccessLog lists the reads of personal data in clear of households in unit's
// subtree between from and to, oldest first, at most limit; for the discipline
// officer of the unit or above.
func (s *Service) AccessLog(ctx context.Context, a org.Actor, unit string, from, to time.Time, limit int) ([]Access, error) {
	if !a.Has(org.RoleDiscipline) {
		return nil, fault.New(fault.Forbidden, "forbidden", "the access log is read by the discipline officer")
	}
	unit, err := a.Area(unit)
	if err != nil {
		return nil, err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{s.Names.AuditSubject(org.SubtreeFilter(unit), "*")},
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from}
	cons, err := s.JS.OrderedConsumer(ctx, s.Names.AuditStream(), cfg)
	if err != nil {
		return nil, fault.Wrap(err, "read the access log")
	}
	out := []Access{}
	for len(out) < limit {
		batch, err := cons.FetchNoWait(min(500, limit-len(out)))
		if err != nil {
			return nil, fault.Wrap(err, "read the access log")
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var e Access
			if json.Unmarshal(m.Data(), &e) != nil {
				continue
			}
			if e.At.After(to) {
				return out, nil
			}
			out = append(out, e)
		}
		if n == 0 {
			break
		}
	}
	return out, nil
}

// ResealReport says what a reseal did.
type ResealReport struct {
	Checked  int    `json:"checked"`  // households read
	Stale    int    `json:"stale"`    // with a value sealed under an earlier key
	Resealed int    `json:"resealed"` // moved to the current key
	Key      string `json:"key"`      // the current key's id
}

// Reseal moves every value sealed under an earlier key to the current one, through
// each household's writer (household.reseal); admins only. Run it after rotating
// GRID_DATA_KEY; then the earlier key can be dropped from GRID_DATA_KEYS_PREVIOUS.
func (s *Service) Reseal(ctx context.Context, a org.Actor) (*ResealReport, error) {
	if !a.Has(org.RoleAdmin) {
		return nil, fault.New(fault.Forbidden, "forbidden", "for admins")
	}
	stale, checked, err := s.Stale(ctx)
	if err != nil {
		return nil, err
	}
	r := &ResealReport{Checked: checked, Stale: len(stale), Key: Keys.Current()}
	reqs := make([]command.Request, 0, len(stale))
	for id, key := range stale {
		reqs = append(reqs, command.Request{ID: "reseal-" + Keys.Current() + "-" + id, Name: CmdReseal, Key: key,
			Actor: org.SystemActor("reseal"), Args: map[string]string{"householdId": id}})
	}
	for i := 0; i < len(reqs); i += 500 {
		outs, err := s.Bus.DoAll(ctx, reqs[i:min(len(reqs), i+500)], time.Minute)
		if err != nil {
			return nil, err
		}
		for _, o := range outs {
			if o.Status == command.Applied {
				r.Resealed++
			}
		}
	}
	return r, nil
}

// Stale lists the households with personal data sealed under another key than the
// current one, with their partition keys.
func (s *Service) Stale(ctx context.Context) (map[string]string, int, error) {
	cur, err := s.DB.Collection(Coll).Find(ctx, bson.D{{Key: "members.0", Value: bson.D{{Key: "$exists", Value: true}}}},
		options.Find().SetProjection(bson.D{{Key: "_k", Value: 1}, {Key: "gridId", Value: 1}, {Key: "members.idCard", Value: 1}, {Key: "members.phone", Value: 1}}))
	if err != nil {
		return nil, 0, fault.Wrap(err, "read households")
	}
	out := map[string]string{}
	checked := 0
	for cur.Next(ctx) {
		var d struct {
			ID      string `bson:"_id"`
			Key     string `bson:"_k"`
			GridID  string `bson:"gridId"`
			Members []struct {
				IDCard string `bson:"idCard"`
				Phone  string `bson:"phone"`
			} `bson:"members"`
		}
		if cur.Decode(&d) != nil {
			continue
		}
		checked++
		for _, m := range d.Members {
			for _, v := range []string{m.IDCard, m.Phone} {
				if v != "" && seal.KeyOf(v) != Keys.Current() {
					out[d.ID] = firstNonEmpty(d.Key, org.PartitionKey(d.GridID))
				}
			}
		}
	}
	return out, checked, cur.Err()
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
