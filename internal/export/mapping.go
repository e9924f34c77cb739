package export

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// KindCheckpoint is the Kind of exported checkpoint events (they are not
// audit entries: a checkpoint signs the tree of the entries before it).
const KindCheckpoint = "checkpoint"

// Product names Warden in metadata.product.
const (
	ProductName   = "Warden"
	ProductVendor = "Warden"
)

// Event is one exported item: an audit entry or a checkpoint, mapped to
// an OCSF 1.8 event. Sinks receive Events in log order.
type Event struct {
	// UID is metadata.uid: "<origin>/<seq>" for an entry and
	// "<origin>/checkpoint/<size>" for a checkpoint. Stable, so receivers
	// de-duplicate on it (NATS Nats-Msg-Id, Kafka key header, …).
	UID string
	// Seq is the entry's sequence number, or the checkpoint's tree size.
	Seq int64
	// Kind is the audit entry kind, or KindCheckpoint.
	Kind string
	// Time is when the event happened (entry time, checkpoint time).
	Time time.Time
	// Severity is the OCSF severity_id (1 informational … 6 fatal).
	Severity int
	// JSON is the OCSF event: one JSON object, no trailing newline.
	JSON []byte
	// leaf is an entry's Merkle leaf hash (unmapped.warden.leaf_hash),
	// which the sinks' frontiers take from the shared event instead of
	// hashing the entry again.
	leaf tlog.Hash
}

// IsCheckpoint reports whether e is a checkpoint event.
func (e *Event) IsCheckpoint() bool { return e.Kind == KindCheckpoint }

// Mapper maps audit entries and checkpoints to OCSF events. The zero
// value is not usable: Origin is required.
type Mapper struct {
	// Origin is the log's origin (the checkpoint key name); it prefixes
	// every metadata.uid.
	Origin string
	// ProductVersion is Warden's version, in metadata.product.version.
	ProductVersion string
	// DropParams leaves the request parameters (and so the embedded
	// canonical entry, which contains them) out of every event.
	DropParams bool
}

// EntryUID returns the metadata.uid of entry seq of the log origin.
func EntryUID(origin string, seq int64) string {
	var buf [20]byte
	return origin + "/" + string(strconv.AppendInt(buf[:0], seq, 10)) // one allocation
}

// CheckpointUID returns the metadata.uid of the checkpoint of size n.
func CheckpointUID(origin string, n int64) string {
	return origin + "/checkpoint/" + strconv.FormatInt(n, 10)
}

// Entry maps entry e (e.Seq set) whose canonical bytes are data (nil:
// computed with audit.Marshal). data must be what audit.Marshal wrote or
// audit.DecodeEntry parsed: it is embedded as it is, not validated
// again. frontier, when not nil, is attached as unmapped.warden.frontier
// (see wardenFields.Frontier).
func (m *Mapper) Entry(e *audit.Entry, data []byte, frontier []tlog.Hash) (Event, error) {
	if data == nil {
		var err error
		if data, err = audit.Marshal(e); err != nil {
			return Event{}, fmt.Errorf("export: map entry %d: %w", e.Seq, err)
		}
	}
	st := getEventStore()
	ev := m.entryEventIn(st, e, data, frontier)
	out, err := m.encode(&ev, e.Seq, 4*len(data)+1024)
	out.leaf = *ev.Unmapped.Warden.LeafHash
	putEventStore(st)
	return out, err
}

// entryFed maps e, an entry as the log appended it (audit.Log.OnCommit;
// e.Seq set) whose canonical bytes are data, to the event Entry maps the
// decoded entry to (a store read's audit.DecodeEntry(e.Seq, data), or
// e.Recorded()), without a frontier. The mapping reads only strings,
// numbers and booleans of the entry and encodes Params and Details with
// the encoder's writer of decoded JSON, which writes Go numbers, string
// lists and string maps exactly as their decoded forms; so for an entry
// audit.Entry.Recordable accepts (valid UTF-8 everywhere, value types
// Recorded converts) e itself maps to the same bytes, with no copy of
// its maps. Anything else is decoded from data first.
// TestEntryFedMatchesDecoded and FuzzEntryFed hold it to that.
func (m *Mapper) entryFed(e *audit.Entry, data []byte) (Event, error) {
	if e.Recordable() {
		return m.Entry(e, data, nil)
	}
	d, err := audit.DecodeEntry(e.Seq, data)
	if err != nil {
		return Event{}, fmt.Errorf("export: entry %d: %w", e.Seq, err)
	}
	return m.Entry(d, data, nil)
}

// entryEvent builds the OCSF event of entry e with canonical bytes data.
func (m *Mapper) entryEvent(e *audit.Entry, data []byte, frontier []tlog.Hash) ocsfEvent {
	return m.entryEventIn(new(eventStore), e, data, frontier)
}

// entryEventIn is entryEvent with the event's objects in st, which the
// event points into until st is reused.
func (m *Mapper) entryEventIn(st *eventStore, e *audit.Entry, data []byte, frontier []tlog.Hash) ocsfEvent {
	st.leaf = tlog.RecordHash(data)
	st.seq = e.Seq
	st.unmapped = unmapped{Warden: wardenFields{Mapping: MappingVersion, Origin: m.Origin, Kind: e.Kind}}
	ev := m.baseIn(e.Time, EntryUID(m.Origin, e.Seq), e.Kind, &st.unmapped)
	ev.st = st
	ev.Metadata.Profiles = st.profiles[:0]
	ev.Metadata.OriginalEventUID = e.ID
	ev.Metadata.CorrelationUID = e.RequestID
	w := &ev.Unmapped.Warden
	w.Seq, w.LeafHash = &st.seq, &st.leaf
	w.RequestID, w.Instance, w.Route, w.Model, w.Outcome = e.RequestID, e.Instance, e.Route, e.Model, e.Outcome
	w.RequestSHA256, w.ResponseSHA256 = e.RequestSHA256, e.ResponseSHA256
	w.BytesIn, w.BytesOut = e.BytesIn, e.BytesOut
	w.UpstreamNS, w.GatewayNS = int64(e.Upstream), int64(e.Gateway)
	w.ApprovalID, w.GrantID = e.ApprovalID, e.GrantID
	if p := e.Principal; p != nil {
		w.Issuer, w.AuthMethod = p.Issuer, p.AuthMethod
	}
	if d := e.Decision; d != nil {
		w.Decision = d.Action
	}
	if s, ok := e.Details["recording_digest"].(string); ok {
		w.Recording = s
	}
	if len(e.Masking) > 0 {
		if st.masked == nil {
			st.masked = map[string]int{}
		}
		w.MaskedEntities = st.masked
		w.Masking = st.masking[:0]
	}
	for _, a := range e.Masking {
		k := a.Entity
		if k == "" {
			k = a.Rule
		}
		w.MaskedEntities[k] += a.Count
		w.Masking = append(w.Masking, maskAction(a))
	}
	w.Details = e.Details
	if m.DropParams {
		w.ParamsDropped = len(e.Params) > 0
	} else {
		w.Entry = data
	}
	if e.Instance != "" {
		st.device = device{Name: e.Instance, TypeID: 1, Type: "Server"}
		ev.Device = &st.device
		ev.Metadata.Profiles = append(ev.Metadata.Profiles, "host")
	}
	rule, ok := kindTable[e.Kind]
	if !ok {
		rule = unknownKind
	}
	rule.build(m, e, &ev)
	w.Frontier = frontier
	return ev
}

// withFrontier returns ev, an event mapped with a nil frontier, with
// frontier attached: the same bytes Entry or Checkpoint would have
// produced with it, since unmapped.warden.frontier is the last member of
// the last member of the event. Sinks share one mapping of each entry and
// add the frontier to the first event of their batch only.
func withFrontier(ev Event, frontier []tlog.Hash) (Event, error) {
	if len(frontier) == 0 {
		return ev, nil
	}
	const tail = "}}}" // closes unmapped.warden, unmapped and the event
	if !bytes.HasSuffix(ev.JSON, []byte(tail)) {
		return Event{}, fmt.Errorf("export: event %s does not end with unmapped.warden", ev.UID)
	}
	e := jsonEnc{b: make([]byte, 0, len(ev.JSON)+len(frontier)*47+16)}
	e.b = append(e.b, ev.JSON[:len(ev.JSON)-len(tail)]...)
	e.key("frontier")
	e.frontier(frontier)
	e.b = append(e.b, tail...)
	ev.JSON = e.b
	return ev, nil
}

// Checkpoint maps a signed checkpoint. frontier is as for Entry.
func (m *Mapper) Checkpoint(c audit.Checkpoint, frontier []tlog.Hash) (Event, error) {
	ev := m.checkpointEvent(c, frontier)
	return m.encode(&ev, c.Size, 2048)
}

// checkpointEvent builds the OCSF event of checkpoint c.
func (m *Mapper) checkpointEvent(c audit.Checkpoint, frontier []tlog.Hash) ocsfEvent {
	ev := m.base(c.Time, CheckpointUID(m.Origin, c.Size), KindCheckpoint)
	setClass(&ev, classEventLog, 99, "Checkpoint")
	ev.Actor = &actor{AppName: ProductName}
	ev.Device = &device{Name: m.Origin, TypeID: 1, Type: "Server"}
	ev.Metadata.Profiles = append(ev.Metadata.Profiles, "host")
	ev.LogName, ev.LogProvider = m.Origin, logProvider
	setStatus(&ev, 1, "")
	ev.Message = fmt.Sprintf("audit log checkpoint: %d entries signed", c.Size)
	ev.Unmapped.Warden.Checkpoint = &checkpointFields{
		Size: c.Size, Hash: c.Hash, Time: c.Time.UTC().Format(time.RFC3339Nano), Note: string(c.Note),
	}
	ev.Unmapped.Warden.Frontier = frontier
	return ev
}

const logProvider = "Warden audit log"

func (m *Mapper) base(t time.Time, uid, kind string) ocsfEvent {
	return m.baseIn(t, uid, kind, &unmapped{Warden: wardenFields{Mapping: MappingVersion, Origin: m.Origin, Kind: kind}})
}

// baseIn is base with the unmapped fields u (set as base sets them).
func (m *Mapper) baseIn(t time.Time, uid, kind string, u *unmapped) ocsfEvent {
	return ocsfEvent{
		Time:       t.UnixMilli(),
		SeverityID: 1, Severity: "Informational",
		Metadata: metadata{
			Version: OCSFVersion,
			Product: product{Name: ProductName, VendorName: ProductVendor, Version: m.ProductVersion},
			UID:     uid, EventCode: kind, LogName: m.Origin, LogProvider: logProvider,
			LoggedTime: t.UnixMilli(),
		},
		Unmapped: u,
	}
}

func (m *Mapper) encode(ev *ocsfEvent, seq int64, sizeHint int) (Event, error) {
	b, err := marshalEvent(ev, sizeHint)
	if err != nil {
		return Event{}, fmt.Errorf("export: encode %s: %w", ev.Metadata.UID, err)
	}
	return Event{
		UID: ev.Metadata.UID, Seq: seq, Kind: ev.Unmapped.Warden.Kind,
		Time: time.UnixMilli(ev.Time).UTC(), Severity: ev.SeverityID, JSON: b,
	}, nil
}

// classSpec is an OCSF class as Warden uses it.
type classSpec struct {
	uid          int
	caption      string
	category     int
	categoryName string
	activities   map[int]string
}

// classTypeNames holds each class's "caption: activity" type names by
// class uid, built once instead of per event.
var classTypeNames = map[int]map[int]string{}

func init() {
	for _, c := range []classSpec{classAPIActivity, classAuthentication, classEntityManagement,
		classUserAccess, classAppLifecycle, classEventLog, classBase} {
		classTypeNames[c.uid] = typeNames(c.caption, c.activities)
	}
}

var (
	classAPIActivity = classSpec{6003, "API Activity", 6, "Application Activity",
		map[int]string{1: "Create", 2: "Read", 3: "Update", 4: "Delete"}}
	classAuthentication = classSpec{3002, "Authentication", 3, "Identity & Access Management",
		map[int]string{1: "Logon"}}
	classEntityManagement = classSpec{3004, "Entity Management", 3, "Identity & Access Management",
		map[int]string{1: "Create", 3: "Update", 11: "Deactivate"}}
	classUserAccess = classSpec{3005, "User Access Management", 3, "Identity & Access Management",
		map[int]string{1: "Assign Privileges", 2: "Revoke Privileges"}}
	classAppLifecycle = classSpec{6002, "Application Lifecycle", 6, "Application Activity",
		map[int]string{3: "Start", 4: "Stop"}}
	classEventLog = classSpec{1008, "Event Log Activity", 1, "System Activity", nil}
	classBase     = classSpec{0, "Base Event", 0, "Uncategorized", nil}
)

// setClass sets the classification attributes. activity 99 (Other)
// takes its name from other.
func setClass(ev *ocsfEvent, c classSpec, activity int, other string) {
	name := c.activities[activity]
	if activity == 99 {
		name = other
	}
	if name == "" {
		// Never for the table's own activities (the schema test checks
		// every row); an empty "other" name becomes "Other".
		activity, name = 99, "Other"
	}
	ev.ClassUID, ev.ClassName = c.uid, c.caption
	ev.CategoryUID, ev.CategoryName = c.category, c.categoryName
	ev.ActivityID, ev.ActivityName = activity, name
	ev.TypeUID = c.uid*100 + activity
	if tn, ok := classTypeNames[c.uid][activity]; ok && activity != 99 {
		ev.TypeName = tn
	} else {
		ev.TypeName = c.caption + ": " + name
	}
}

// typeNames returns "caption: activity" for a class's named activities.
func typeNames(caption string, activities map[int]string) map[int]string {
	out := make(map[int]string, len(activities))
	for id, name := range activities {
		out[id] = caption + ": " + name
	}
	return out
}

var statusNames = map[int]string{1: "Success", 2: "Failure"}

// setStatus sets status_id (1 success, 2 failure, 99 other with other as
// its name).
func setStatus(ev *ocsfEvent, id int, other string) {
	ev.StatusID, ev.Status = id, statusNames[id]
	if id == 99 {
		ev.Status = other
	}
}

var severityNames = map[int]string{1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical", 6: "Fatal"}

func setSeverity(ev *ocsfEvent, id int) { ev.SeverityID, ev.Severity = id, severityNames[id] }

// disposition is the security-control outcome of a request.
type disposition int

const (
	dispNone disposition = iota
	dispAllowed
	dispBlocked
	dispHeld
	dispApproved
	dispRejected
)

// setDisposition sets the security_control profile's action and
// disposition.
func setDisposition(ev *ocsfEvent, d disposition) {
	switch d {
	case dispNone:
		return
	case dispAllowed:
		ev.ActionID, ev.Action, ev.DispositionID, ev.Disposition = 1, "Allowed", 1, "Allowed"
	case dispBlocked:
		ev.ActionID, ev.Action, ev.DispositionID, ev.Disposition = 2, "Denied", 2, "Blocked"
	case dispHeld:
		// Held for human approval: neither allowed nor denied yet.
		ev.ActionID, ev.Action, ev.DispositionID, ev.Disposition = 99, "Held", 14, "Delayed"
	case dispApproved:
		ev.ActionID, ev.Action, ev.DispositionID, ev.Disposition = 1, "Allowed", 8, "Approved"
	case dispRejected:
		ev.ActionID, ev.Action, ev.DispositionID, ev.Disposition = 2, "Denied", 25, "Rejected"
	}
	addProfile(ev, "security_control")
}

func addProfile(ev *ocsfEvent, p string) {
	for _, x := range ev.Metadata.Profiles {
		if x == p {
			return
		}
	}
	ev.Metadata.Profiles = append(ev.Metadata.Profiles, p)
}

// detail returns Details[key] as a string ("" if absent or not a string).
func detail(e *audit.Entry, key string) string {
	s, _ := e.Details[key].(string)
	return s
}

// principalUser maps an audit principal to an OCSF user.
func principalUser(p *identity.Principal) *user { return principalUserIn(nil, p) }

// principalUserIn is principalUser with the user (and its groups, up to
// the store's array) in st when st is not nil.
func principalUserIn(st *eventStore, p *identity.Principal) *user {
	if p == nil {
		return nil
	}
	var u *user
	if st != nil {
		st.user = user{UID: p.Subject, Name: p.Name, Domain: p.Issuer, CredentialUID: p.CredentialID}
		u = &st.user
		if len(p.Groups) > 0 && len(p.Groups) <= len(st.groups) {
			u.Groups = st.groups[:0]
		}
	} else {
		u = &user{UID: p.Subject, Name: p.Name, Domain: p.Issuer, CredentialUID: p.CredentialID}
	}
	if u.Name == "" {
		u.Name = p.Subject
	}
	switch string(p.Kind) {
	case "user":
		u.TypeID, u.Type = 1, "User"
	case "service":
		u.TypeID, u.Type = 4, "Service"
	}
	for _, g := range p.Groups {
		u.Groups = append(u.Groups, group{Name: g})
	}
	if u.UID == "" && u.Name == "" {
		u.Name = "unknown"
	}
	return u
}

// principalActor is the actor of an entry: its principal, or Warden
// itself when there is none.
func principalActor(p *identity.Principal) *actor { return principalActorIn(nil, p) }

// principalActorIn is principalActor with the actor, its user and idp in
// st when st is not nil.
func principalActorIn(st *eventStore, p *identity.Principal) *actor {
	if st == nil {
		if p == nil {
			return &actor{AppName: ProductName}
		}
		a := &actor{User: principalUser(p)}
		if p.Issuer != "" {
			a.IDP = &idp{Name: p.Issuer, ProtocolName: protocolName(p.AuthMethod)}
		}
		return a
	}
	if p == nil {
		st.actor = actor{AppName: ProductName}
		return &st.actor
	}
	st.actor = actor{User: principalUserIn(st, p)}
	if p.Issuer != "" {
		st.idp = idp{Name: p.Issuer, ProtocolName: protocolName(p.AuthMethod)}
		st.actor.IDP = &st.idp
	}
	return &st.actor
}

func protocolName(method string) string {
	switch method {
	case "oidc":
		return "OpenID Connect"
	case "api_key":
		return "API key"
	}
	return method
}

// userFromRef parses the "issuer subject" form used in approval details.
func userFromRef(ref string) *user {
	iss, sub, ok := strings.Cut(ref, " ")
	if !ok {
		return &user{UID: ref, Name: ref}
	}
	return &user{UID: sub, Name: sub, Domain: iss}
}
