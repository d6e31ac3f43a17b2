package incident

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/attachment"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
)

// MoveArgs are the arguments of every incident move after the report; each move reads
// the fields it needs (see moves). Their JSON Schemas, per mutation, are in
// schemas/openapi.yaml (Incident…Args).
type MoveArgs struct {
	IncidentID string `json:"incidentId"`
	// Note is an optional remark (accept, assign, start, verify, merge, approveDelay).
	Note string `json:"note"`
	// Reason is required by escalate, refuse, reopen and requestDelay.
	Reason string `json:"reason"`
	// AssigneeID is the login of the handler (assign).
	AssigneeID string `json:"assigneeId"`
	// Result reports the work done (resolve).
	Result string `json:"result"`
	// Photos are the result's photos (resolve) or a comment's (comment).
	Photos []string `json:"photos"`
	// DueAt is the new due time asked for (requestDelay) or granted instead of it
	// (approveDelay).
	DueAt *time.Time `json:"dueAt"`
	// RequesterContact is how the requester is reached for the delay notice
	// (requestDelay; defaults to the requester's phone).
	RequesterContact string `json:"requesterContact"`
	// RequesterNotice says how and when the requester was told of a refusal (refuse).
	RequesterNotice string `json:"requesterNotice"`
	// Approved is required by approveDelay: false turns the request down.
	Approved *bool `json:"approved"`
	// IntoIncidentID is the open incident this one repeats (merge).
	IntoIncidentID string `json:"intoIncidentId"`
	// CommentID and Text are a comment (comment).
	CommentID string `json:"commentId"`
	Text      string `json:"text"`
	// UnitID is the unit below the owner that receives the incident (handDown).
	UnitID string `json:"unitId"`
	// Rating is satisfied, basically_satisfied or unsatisfied, with the requester's
	// Comment (rate).
	Rating  string `json:"rating"`
	Comment string `json:"comment"`
}

// Ratings of 服务评价.
const (
	Satisfied          = "satisfied"
	BasicallySatisfied = "basically_satisfied"
	Unsatisfied        = "unsatisfied"
)

// move is one row of the lifecycle: who may make it (the guard, with the words the
// refusal uses) and what it does beyond the status change of transitions.
type move struct {
	who     func(a org.Actor, inc *Incident) bool
	whoText string
	// apply checks the arguments and changes inc; it may return a status that
	// replaces the table's (a declined delay, a rating that reopens) and the history
	// reason. The event published is "incident." + event.
	apply func(s *Service, tx *command.Tx, c *command.Command, inc *Incident, m *MoveArgs, to Status) (Status, string, error)
	event string
}

// moves is the lifecycle after the report (DESIGN §3), one row per action; the
// statuses each may start from and lead to are in transitions.
var moves = map[Action]move{
	ActAccept:   {manages, "the owning unit's dispatcher or a supervisor above", (*Service).doAccept, "accepted"},
	ActAssign:   {manages, "the owning unit's dispatcher or a supervisor above", (*Service).doAssign, "assigned"},
	ActStart:    {worksOn, "the assignee or the owning unit's dispatcher", (*Service).doStart, "started"},
	ActResolve:  {resolves, "the assignee, the owning unit's dispatcher, or the reporting grid worker on the spot", (*Service).doResolve, "resolved"},
	ActVerify:   {manages, "the owning unit's dispatcher or a supervisor above", (*Service).doVerify, "closed"},
	ActReopen:   {manages, "the owning unit's dispatcher or a supervisor above", (*Service).doReopen, "reopened"},
	ActEscalate: {manages, "the owning unit's dispatcher or a supervisor above", (*Service).doEscalate, "escalated"},
	ActRefuse:   {manages, "the owning unit's dispatcher or a supervisor above", (*Service).doRefuse, "refused"},
	ActDelayReq: {worksOn, "the assignee or the owning unit's dispatcher", (*Service).doRequestDelay, "delayRequested"},
	ActDelayOK:  {approves, "a leader or supervisor of the owning unit or above", (*Service).doApproveDelay, "delayDecided"},
	ActMerge:    {manages, "the owning unit's dispatcher or a supervisor above", (*Service).doMerge, "merged"},
	ActComment:  {canSee, "anyone who sees the incident", (*Service).doComment, "commented"},
	ActRate:     {rates, "the reporter or the owning unit's dispatcher", (*Service).doRate, "rated"},
	ActHandDown: {manages, "the owning unit's dispatcher or a supervisor above", (*Service).doHandDown, "handedDown"},
	ActTakeOver: {supervises, "a dispatcher, supervisor or leader of a unit above the owner", (*Service).doTakeOver, "takenOver"},
}

// manages: the owning unit's dispatcher, or a supervisor or leader above it (督办).
func manages(a org.Actor, inc *Incident) bool {
	return a.System || (a.Has(org.RoleDispatcher) && a.UnitID == inc.UnitID) ||
		(a.Has(org.RoleSupervisor, org.RoleLeader) && a.Sees(inc.UnitID))
}

// supervises: a dispatcher, supervisor or leader of a unit above the owning unit, who
// may take the item over (督办).
func supervises(a org.Actor, inc *Incident) bool {
	return !a.System && a.Has(org.RoleDispatcher, org.RoleSupervisor, org.RoleLeader) &&
		a.UnitID != inc.UnitID && a.Sees(inc.UnitID)
}

// worksOn: the assignee, or whoever manages the incident.
func worksOn(a org.Actor, inc *Incident) bool {
	return manages(a, inc) || (inc.AssigneeID != "" && a.UserID == inc.AssigneeID)
}

// resolves: who works on it, or its reporter when a grid worker (on the spot; the
// category rule is checked by doResolve).
func resolves(a org.Actor, inc *Incident) bool {
	return worksOn(a, inc) || (a.IsGridWorker() && a.UserID == inc.ReporterID)
}

// approves: a leader or supervisor whose subtree holds the owning unit.
func approves(a org.Actor, inc *Incident) bool {
	return a.System || (a.Has(org.RoleLeader, org.RoleSupervisor) && a.Sees(inc.UnitID))
}

// rates: the reporter (who holds the requester's answer) or whoever manages it.
func rates(a org.Actor, inc *Incident) bool {
	return manages(a, inc) || a.UserID == inc.ReporterID
}

// decodeMove decodes and checks what every move's arguments share, before anything
// is read: a UUIDv7 incident id, free texts of at most 2000 characters of valid
// UTF-8, photos that are attachment references. Each move checks its own fields.
func decodeMove(args []byte) (*MoveArgs, error) {
	var m MoveArgs
	if err := json.Unmarshal(args, &m); err != nil || !validID(m.IncidentID) {
		return nil, fault.New(fault.Invalid, "invalid_args", "incidentId must be a UUIDv7")
	}
	for field, v := range map[string]string{"note": m.Note, "reason": m.Reason, "result": m.Result, "text": m.Text,
		"comment": m.Comment, "requesterNotice": m.RequesterNotice} {
		if utf8.RuneCountInString(v) > MaxDescription || !utf8.ValidString(v) {
			return nil, fault.New(fault.Invalid, "invalid_args", field+": at most 2000 characters of valid UTF-8")
		}
	}
	if err := validPhotos(m.Photos); err != nil {
		return nil, err
	}
	return &m, nil
}

// applyMove is the one handler of every move after the report.
func (s *Service) applyMove(action Action) func(tx *command.Tx, c *command.Command) error {
	mv := moves[action]
	return func(tx *command.Tx, c *command.Command) error {
		m, err := decodeMove(c.Args)
		if err != nil {
			return err
		}
		inc, err := s.load(tx, c.Actor, m.IncidentID)
		if err != nil {
			return err
		}
		if !mv.who(c.Actor, inc) {
			return fault.New(fault.Forbidden, "forbidden", fmt.Sprintf("only %s can %s this incident", mv.whoText, action))
		}
		from := inc.Status
		to, err := next(from, action)
		if err != nil {
			return err
		}
		to, reason, err := mv.apply(s, tx, c, inc, m, to)
		if err != nil {
			return err
		}
		now := tx.Now()
		inc.History = append(inc.History, HistoryEntry{At: now, By: c.Actor.UserID, Device: c.Actor.DeviceID,
			Action: string(action), From: from, To: to, Reason: reason, Unit: inc.UnitID})
		inc.Status = to
		inc.UpdatedAt = now
		inc.Version++
		return s.put(tx, inc, "incident."+mv.event)
	}
}

func required(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return fault.New(fault.Invalid, "reason_required", field+" is required")
	}
	return nil
}

func (s *Service) doAccept(tx *command.Tx, c *command.Command, inc *Incident, m *MoveArgs, to Status) (Status, string, error) {
	// 首问负责制: whoever first accepts is the first-inquiry owner for good.
	s.takeCharge(inc, c.Actor.UserID, tx.Now())
	return to, m.Note, nil
}

// assigneeDoc is the part of a user record an assignment checks.
type assigneeDoc struct {
	UnitID   string `bson:"unitId"`
	Disabled bool   `bson:"disabled"`
}

func (s *Service) doAssign(tx *command.Tx, c *command.Command, inc *Incident, m *MoveArgs, to Status) (Status, string, error) {
	if m.AssigneeID == "" || len(m.AssigneeID) > 64 {
		return "", "", fault.New(fault.Invalid, "invalid_args", "assigneeId: the login of the handler is required")
	}
	var u assigneeDoc
	found, err := tx.Peek("users", strings.ToLower(m.AssigneeID), &u)
	if err != nil {
		return "", "", err
	}
	owner := org.Actor{UnitID: inc.UnitID}
	if !found || u.Disabled || !owner.Sees(u.UnitID) {
		return "", "", fault.New(fault.Unprocessable, "invalid_assignee", "the assignee must be an active user of the owning unit or below")
	}
	inc.AssigneeID = strings.ToLower(m.AssigneeID)
	return to, m.Note, nil
}

func (s *Service) doStart(_ *command.Tx, _ *command.Command, _ *Incident, m *MoveArgs, to Status) (Status, string, error) {
	return to, m.Note, nil
}

func (s *Service) doResolve(tx *command.Tx, c *command.Command, inc *Incident, m *MoveArgs, to Status) (Status, string, error) {
	if err := required("result", m.Result); err != nil {
		return "", "", err
	}
	if inc.Status != Reported && !worksOn(c.Actor, inc) {
		return "", "", fault.New(fault.Forbidden, "forbidden", "only the assignee or the owning unit's dispatcher can resolve this incident")
	}
	if inc.Status == Reported {
		// 就地解决: the reporting grid worker resolves on the spot a category the grid
		// handles; it is recorded at level 1 and the community verifies it.
		cat, _ := s.Catalog().Find(inc.Category)
		if !c.Actor.IsGridWorker() || c.Actor.UserID != inc.ReporterID || cat.DefaultLevel != int(org.Grid) {
			return "", "", fault.New(fault.Conflict, "invalid_transition",
				"only the reporting grid worker resolves a reported incident, on the spot, and only in a category the grid handles")
		}
		inc.Level = int(org.Grid)
	}
	inc.Result = strings.TrimSpace(m.Result)
	inc.ResultPhotos = m.Photos
	for _, p := range m.Photos {
		tx.Reference(p, inc.ID, inc.ScopeUnit())
	}
	now := tx.Now()
	inc.ResolvedAt = &now
	return to, inc.Result, nil
}

func (s *Service) doVerify(tx *command.Tx, _ *command.Command, inc *Incident, m *MoveArgs, to Status) (Status, string, error) {
	now := tx.Now()
	inc.ClosedAt = &now
	return to, m.Note, nil
}

func (s *Service) doReopen(_ *command.Tx, _ *command.Command, inc *Incident, m *MoveArgs, to Status) (Status, string, error) {
	if err := required("reason", m.Reason); err != nil {
		return "", "", err
	}
	inc.Reopens++
	inc.ClosedAt, inc.ResolvedAt = nil, nil
	return to, m.Reason, nil
}

func (s *Service) doEscalate(tx *command.Tx, _ *command.Command, inc *Incident, m *MoveArgs, to Status) (Status, string, error) {
	if err := required("reason", m.Reason); err != nil {
		return "", "", err
	}
	if err := escalate(inc); err != nil {
		return "", "", err
	}
	s.arrive(inc, tx.Now())
	return to, m.Reason, nil
}

// escalate hands an incident to the parent unit (逐级上报): one level up, back to
// reported there, unassigned. The first-inquiry owner stays; the new level's
// acceptance sets the new deadline.
func escalate(inc *Incident) error {
	parent := org.Parent(inc.UnitID)
	if parent == "" {
		return fault.New(fault.Conflict, "top_level", "the city is the top level: there is no one to escalate to")
	}
	lvl, _ := org.LevelOf(parent)
	inc.UnitID, inc.Level = parent, int(lvl)
	inc.AssigneeID = ""
	inc.DueAt = nil
	inc.Overdue = false
	inc.PendingDelay = nil
	inc.Escalations++
	return nil
}

// takeCharge records an acceptance by the unit about to own the item: the first
// acceptance makes its author the first-inquiry owner and sets the deadline; a deadline
// already set by a level stands.
func (s *Service) takeCharge(inc *Incident, by string, now time.Time) {
	if inc.FirstOwnerID == "" {
		inc.FirstOwnerID = by
	}
	if inc.DueAt == nil {
		inc.Overdue = false
	}
	inc.DueAt = s.dueAfterAccept(inc, now)
	inc.AcceptBy = nil
}

// doHandDown (交办) gives the incident to a unit below its owner, on the way down to
// where it happened, already accepted: the deadline this level set stays (DESIGN §3,
// "items handed down from a higher level keep the deadline that level set").
func (s *Service) doHandDown(tx *command.Tx, c *command.Command, inc *Incident, m *MoveArgs, to Status) (Status, string, error) {
	target := strings.TrimSpace(m.UnitID)
	lvl, err := org.LevelOf(target)
	if err != nil || !org.ValidCode(target) {
		return "", "", fault.New(fault.Invalid, "invalid_args", "unitId: the code of a unit below the owner")
	}
	below := org.Actor{UnitID: inc.UnitID}
	if target == inc.UnitID || !below.Sees(target) || lvl < org.Community ||
		(inc.GridID != "" && !(org.Actor{UnitID: target}).Sees(inc.GridID)) {
		return "", "", fault.New(fault.Unprocessable, "invalid_unit",
			"an incident is handed down to a community, street or district below its owner that contains where it happened")
	}
	found, err := tx.Peek("units", target, &struct{}{})
	if err != nil {
		return "", "", err
	}
	if !found {
		return "", "", fault.New(fault.Unprocessable, "invalid_unit", "no such unit: "+target)
	}
	s.takeCharge(inc, c.Actor.UserID, tx.Now())
	inc.UnitID, inc.Level = target, int(lvl)
	inc.AssigneeID = ""
	inc.PendingDelay = nil
	return to, strings.TrimSpace("to " + target + " " + m.Note), nil
}

// doTakeOver (督办) makes the caller's unit, above the owner, the owner: the item is
// accepted there with the deadline it had; the first-inquiry owner stays.
func (s *Service) doTakeOver(tx *command.Tx, c *command.Command, inc *Incident, m *MoveArgs, to Status) (Status, string, error) {
	if err := required("reason", m.Reason); err != nil {
		return "", "", err
	}
	lvl, _ := org.LevelOf(c.Actor.UnitID)
	s.takeCharge(inc, c.Actor.UserID, tx.Now())
	inc.UnitID, inc.Level = c.Actor.UnitID, int(lvl)
	inc.AssigneeID = ""
	inc.PendingDelay = nil
	inc.Escalations++
	return to, m.Reason, nil
}

func (s *Service) doRefuse(tx *command.Tx, c *command.Command, inc *Incident, m *MoveArgs, to Status) (Status, string, error) {
	if err := required("reason", m.Reason); err != nil {
		return "", "", err
	}
	now := tx.Now()
	received := inc.receivedAt()
	r := &Refusal{Reason: strings.TrimSpace(m.Reason), By: c.Actor.UserID, Unit: inc.UnitID, At: now, ReceivedAt: received,
		RequesterNotice: strings.TrimSpace(m.RequesterNotice)}
	// 否定报备: filed within 1 working day of receipt; a later filing is flagged.
	if due, err := s.calendar.Load().Due(received, 1); err == nil && now.After(due) {
		r.Late = true
	} else if err != nil && now.Sub(received) > 24*time.Hour {
		r.Late = true
	}
	inc.Refusal = r
	inc.DueAt = nil
	return to, r.Reason, nil
}

// receivedAt is when the owning unit received the incident: its latest arrival there
// (reported, escalated or passed up to it; an overdue mark is not an arrival).
func (inc *Incident) receivedAt() time.Time {
	for i := len(inc.History) - 1; i >= 0; i-- {
		h := inc.History[i]
		arrival := h.Action == string(ActReport) || h.Action == string(ActEscalate) || h.Action == "route"
		if arrival && h.To == Reported && (h.Unit == inc.UnitID || h.Unit == "") {
			return h.At
		}
	}
	return inc.CreatedAt
}

func (s *Service) doRequestDelay(tx *command.Tx, c *command.Command, inc *Incident, m *MoveArgs, to Status) (Status, string, error) {
	if err := required("reason", m.Reason); err != nil {
		return "", "", err
	}
	now := tx.Now()
	if m.DueAt == nil || !m.DueAt.After(now) || (inc.DueAt != nil && !m.DueAt.After(*inc.DueAt)) {
		return "", "", fault.New(fault.Invalid, "invalid_args", "dueAt: the new due time must be later than now and than the current due time")
	}
	if m.DueAt.Sub(now) > 366*24*time.Hour {
		return "", "", fault.New(fault.Invalid, "invalid_args", "dueAt: at most a year ahead")
	}
	contact := strings.TrimSpace(m.RequesterContact)
	if contact == "" && inc.Requester != nil {
		contact = inc.Requester.Phone
	}
	if utf8.RuneCountInString(contact) > 200 {
		return "", "", fault.New(fault.Invalid, "invalid_args", "requesterContact: at most 200 characters")
	}
	due := m.DueAt.UTC().Truncate(time.Millisecond)
	inc.PendingDelay = &DelayRequest{Reason: strings.TrimSpace(m.Reason), By: c.Actor.UserID, At: now, DueAt: due, RequesterContact: contact}
	return to, inc.PendingDelay.Reason, nil
}

func (s *Service) doApproveDelay(tx *command.Tx, c *command.Command, inc *Incident, m *MoveArgs, to Status) (Status, string, error) {
	if m.Approved == nil {
		return "", "", fault.New(fault.Invalid, "invalid_args", "approved: true or false is required")
	}
	p := inc.PendingDelay
	if p == nil {
		return "", "", fault.New(fault.Conflict, "no_delay_requested", "no delay is waiting for approval")
	}
	now := tx.Now()
	if m.DueAt != nil {
		if !m.DueAt.After(now) {
			return "", "", fault.New(fault.Invalid, "invalid_args", "dueAt: the granted due time must be later than now")
		}
		p.DueAt = m.DueAt.UTC().Truncate(time.Millisecond)
	}
	inc.PendingDelay = nil
	if !*m.Approved {
		return inc.Status, strings.TrimSpace("declined " + m.Note), nil
	}
	d := Delay{Reason: p.Reason, RequestedBy: p.By, RequestedAt: p.At, ApprovedBy: c.Actor.UserID, ApprovedAt: now,
		OldDueAt: inc.DueAt, NewDueAt: p.DueAt, RequesterContact: p.RequesterContact}
	d.Notice = s.delayNotice(inc, &d)
	inc.Delays = append(inc.Delays, d)
	due := p.DueAt
	inc.DueAt = &due
	inc.Overdue = false
	return to, m.Note, nil
}

// delayNotice is the 滞办反馈 text the requester receives, in both languages.
func (s *Service) delayNotice(inc *Incident, d *Delay) Names {
	cat, _ := s.Catalog().Find(inc.Category)
	due := d.NewDueAt.In(workday.Location())
	short := inc.ID[len(inc.ID)-8:]
	return Names{
		Zh: fmt.Sprintf("【延期办理告知】您反映的“%s”事项（编号%s）因%s，需延期办理，现预计于%s前办结。批准人：%s。给您带来不便，敬请谅解。",
			firstNonEmpty(cat.Names.Zh, inc.Category), short, d.Reason, due.Format("2006年1月2日 15:04"), d.ApprovedBy),
		En: fmt.Sprintf("Delay notice: the matter you reported (%s, no. %s) needs more time because: %s. It is now due by %s (Beijing time). Approved by %s. We apologise for the wait.",
			firstNonEmpty(cat.Names.En, inc.Category), short, d.Reason, due.Format("2 January 2006 15:04"), d.ApprovedBy),
	}
}

func (s *Service) doMerge(tx *command.Tx, _ *command.Command, inc *Incident, m *MoveArgs, to Status) (Status, string, error) {
	if !validID(m.IntoIncidentID) || m.IntoIncidentID == inc.ID {
		return "", "", fault.New(fault.Invalid, "invalid_args", "intoIncidentId: the id of another incident")
	}
	var d doc
	found, err := tx.Get(Coll, m.IntoIncidentID, &d)
	if err != nil {
		return "", "", err
	}
	if !found || d.Key != org.PartitionKey(inc.ScopeUnit()) {
		return "", "", fault.New(fault.Unprocessable, "invalid_original", "intoIncidentId must be an incident of the same community")
	}
	if st := Status(d.Status); st == Duplicate || st == Refused {
		return "", "", fault.New(fault.Unprocessable, "invalid_original", "the original is itself "+string(st))
	}
	inc.DuplicateOf = m.IntoIncidentID
	inc.DueAt = nil
	return to, m.Note, nil
}

func (s *Service) doComment(tx *command.Tx, c *command.Command, inc *Incident, m *MoveArgs, to Status) (Status, string, error) {
	if err := required("text", m.Text); err != nil {
		return "", "", err
	}
	if !validUUID(m.CommentID) {
		return "", "", fault.New(fault.Invalid, "invalid_args", "commentId: a UUID made on the device")
	}
	for _, x := range inc.Comments {
		if x.ID == m.CommentID {
			return "", "", fault.New(fault.Conflict, "already_exists", "a comment with this id exists")
		}
	}
	if len(inc.Comments) >= MaxComments {
		return "", "", fault.New(fault.Conflict, "too_many_comments", "an incident keeps at most 200 comments")
	}
	text := strings.TrimSpace(m.Text)
	inc.Comments = append(inc.Comments, Comment{ID: m.CommentID, By: c.Actor.UserID, At: tx.Now(), Text: text, Photos: m.Photos})
	for _, p := range m.Photos {
		tx.Reference(p, inc.ID, inc.ScopeUnit())
	}
	return to, text, nil
}

// MaxComments bounds an incident's comments (the record syncs to every phone in scope).
const MaxComments = 200

func validPhotos(ps []string) error {
	f := fault.Fields{}
	attachment.CheckPhotos(f, "photos", ps)
	return f.Err("invalid_args", "the mutation's arguments are invalid")
}

func validUUID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}

func (s *Service) doRate(tx *command.Tx, c *command.Command, inc *Incident, m *MoveArgs, to Status) (Status, string, error) {
	if !slices.Contains([]string{Satisfied, BasicallySatisfied, Unsatisfied}, m.Rating) {
		return "", "", fault.New(fault.Invalid, "invalid_args", "rating: satisfied, basically_satisfied or unsatisfied")
	}
	inc.Rating = &Rating{Value: m.Rating, Comment: strings.TrimSpace(m.Comment), By: c.Actor.UserID, At: tx.Now()}
	// 服务评价: an unsatisfied rating reopens the item, once.
	if m.Rating == Unsatisfied && !inc.ReopenedByRating {
		inc.ReopenedByRating = true
		inc.Reopens++
		inc.ClosedAt, inc.ResolvedAt = nil, nil
		return InProgress, strings.TrimSpace("unsatisfied " + m.Comment), nil
	}
	return to, strings.TrimSpace(m.Rating + " " + m.Comment), nil
}
