package export

import (
	"bytes"
	"encoding/json"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// The OCSF 1.8 shapes Warden produces. One struct holds the attributes
// of every class Warden uses; each mapping fills those of its class (the
// schema validator test checks that nothing else is set). Field order is
// the JSON order, so an event encodes to the same bytes every time.

// OCSFVersion is the OCSF schema version of exported events.
const OCSFVersion = "1.8.0"

// MappingVersion is the version of Warden's mapping from audit entries
// to OCSF (unmapped.warden.mapping). The stream verifier re-maps embedded
// entries and refuses a stream mapped by another version.
const MappingVersion = 1

type ocsfEvent struct {
	ActivityID   int    `json:"activity_id"`
	ActivityName string `json:"activity_name,omitempty"`
	CategoryUID  int    `json:"category_uid"`
	CategoryName string `json:"category_name,omitempty"`
	ClassUID     int    `json:"class_uid"`
	ClassName    string `json:"class_name,omitempty"`
	TypeUID      int    `json:"type_uid"`
	TypeName     string `json:"type_name,omitempty"`
	SeverityID   int    `json:"severity_id"`
	Severity     string `json:"severity,omitempty"`
	Time         int64  `json:"time"`
	Message      string `json:"message,omitempty"`
	StatusID     int    `json:"status_id,omitempty"`
	Status       string `json:"status,omitempty"`
	StatusCode   string `json:"status_code,omitempty"`
	StatusDetail string `json:"status_detail,omitempty"`
	Duration     int64  `json:"duration,omitempty"`

	Metadata metadata `json:"metadata"`

	Actor        *actor         `json:"actor,omitempty"`
	User         *user          `json:"user,omitempty"`
	API          *api           `json:"api,omitempty"`
	HTTPRequest  *httpRequest   `json:"http_request,omitempty"`
	HTTPResponse *httpResponse  `json:"http_response,omitempty"`
	SrcEndpoint  *endpoint      `json:"src_endpoint,omitempty"`
	Service      *service       `json:"service,omitempty"`
	Resources    []resource     `json:"resources,omitempty"`
	Privileges   []string       `json:"privileges,omitempty"`
	Entity       *managedEntity `json:"entity,omitempty"`
	EntityResult *managedEntity `json:"entity_result,omitempty"`
	Comment      string         `json:"comment,omitempty"`
	App          *product       `json:"app,omitempty"`
	LogName      string         `json:"log_name,omitempty"`
	LogProvider  string         `json:"log_provider,omitempty"`
	IsRemote     *bool          `json:"is_remote,omitempty"`
	Device       *device        `json:"device,omitempty"`

	// security_control profile.
	ActionID      int     `json:"action_id,omitempty"`
	Action        string  `json:"action,omitempty"`
	DispositionID int     `json:"disposition_id,omitempty"`
	Disposition   string  `json:"disposition,omitempty"`
	Policy        *policy `json:"policy,omitempty"`
	IsAlert       *bool   `json:"is_alert,omitempty"`

	Unmapped *unmapped `json:"unmapped,omitempty"`

	// st, when set, holds the objects the event points to for the
	// request kinds (not encoded: unexported).
	st *eventStore
}

// eventStore holds the objects an entry's event points to for the
// request kinds — most of the log — so that Mapper.Entry builds the
// event in a pooled store instead of allocating each object (decision
// 031). Each object has one user per event: requestCommon,
// the actor of mapRequest, entryEvent's own fields. Other kinds, and
// more groups or masking actions than the arrays hold, allocate as
// before.
type eventStore struct {
	unmapped     unmapped
	seq          int64
	leaf         tlog.Hash
	device       device
	actor        actor
	user         user
	idp          idp
	groups       [8]group
	api          api
	service      service
	apiRequest   apiRequest
	apiResponse  apiResponse
	httpRequest  httpRequest
	url          url
	httpResponse httpResponse
	endpoint     endpoint
	policy       policy
	resources    [1]resource
	profiles     [4]string
	masking      [8]maskAction
	masked       map[string]int
}

var eventStores = sync.Pool{New: func() any { return new(eventStore) }}

func getEventStore() *eventStore { return eventStores.Get().(*eventStore) }

// putEventStore returns st to the pool, emptied: it must not keep the
// entry's maps and strings alive.
func putEventStore(st *eventStore) {
	m := st.masked
	clear(m)
	*st = eventStore{masked: m}
	eventStores.Put(st)
}

type metadata struct {
	Version          string   `json:"version"`
	Product          product  `json:"product"`
	UID              string   `json:"uid"`
	OriginalEventUID string   `json:"original_event_uid,omitempty"`
	CorrelationUID   string   `json:"correlation_uid,omitempty"`
	EventCode        string   `json:"event_code,omitempty"`
	LogName          string   `json:"log_name,omitempty"`
	LogProvider      string   `json:"log_provider,omitempty"`
	LoggedTime       int64    `json:"logged_time,omitempty"`
	Profiles         []string `json:"profiles,omitempty"`
}

type product struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name,omitempty"`
	Version    string `json:"version,omitempty"`
	UID        string `json:"uid,omitempty"`
}

type actor struct {
	User    *user  `json:"user,omitempty"`
	IDP     *idp   `json:"idp,omitempty"`
	AppName string `json:"app_name,omitempty"`
}

type user struct {
	UID           string  `json:"uid,omitempty"`
	Name          string  `json:"name,omitempty"`
	Domain        string  `json:"domain,omitempty"`
	TypeID        int     `json:"type_id,omitempty"`
	Type          string  `json:"type,omitempty"`
	CredentialUID string  `json:"credential_uid,omitempty"`
	Groups        []group `json:"groups,omitempty"`
}

type group struct {
	Name string `json:"name"`
}

type idp struct {
	Name         string `json:"name,omitempty"`
	ProtocolName string `json:"protocol_name,omitempty"`
}

type api struct {
	Operation string       `json:"operation"`
	Service   *service     `json:"service,omitempty"`
	Request   *apiRequest  `json:"request,omitempty"`
	Response  *apiResponse `json:"response,omitempty"`
}

type service struct {
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

type apiRequest struct {
	UID  string         `json:"uid"`
	Data map[string]any `json:"data,omitempty"`
}

type apiResponse struct {
	Code         int    `json:"code,omitempty"`
	Error        string `json:"error,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`
}

type httpRequest struct {
	HTTPMethod string `json:"http_method,omitempty"`
	URL        *url   `json:"url,omitempty"`
	UserAgent  string `json:"user_agent,omitempty"`
	Length     int64  `json:"length,omitempty"`
}

type url struct {
	Path string `json:"path"`
}

type httpResponse struct {
	Code   int   `json:"code"`
	Length int64 `json:"length,omitempty"`
}

type endpoint struct {
	IP   string `json:"ip,omitempty"`
	Name string `json:"name,omitempty"`
}

type resource struct {
	Type string `json:"type,omitempty"`
	Name string `json:"name,omitempty"`
}

type managedEntity struct {
	UID     string         `json:"uid,omitempty"`
	Name    string         `json:"name,omitempty"`
	Type    string         `json:"type,omitempty"`
	TypeID  int            `json:"type_id,omitempty"`
	Version string         `json:"version,omitempty"`
	Data    map[string]any `json:"data,omitempty"`
}

type device struct {
	Name   string `json:"name"`
	TypeID int    `json:"type_id"`
	Type   string `json:"type,omitempty"`
}

type policy struct {
	Name      string `json:"name,omitempty"`
	UID       string `json:"uid,omitempty"`
	Version   string `json:"version,omitempty"`
	Desc      string `json:"desc,omitempty"`
	IsApplied bool   `json:"is_applied,omitempty"`
}

type unmapped struct {
	Warden wardenFields `json:"warden"`
}

// wardenFields are the Warden-specific fields of an exported event
// (unmapped.warden): where it sits in the log, and what OCSF has no
// place for.
type wardenFields struct {
	// Mapping is MappingVersion.
	Mapping int `json:"mapping"`
	// Origin is the log's origin (checkpoint key name).
	Origin string `json:"origin"`
	// Seq is the entry's sequence number (absent for a checkpoint).
	Seq *int64 `json:"seq,omitempty"`
	// LeafHash is the entry's Merkle leaf hash: tlog.RecordHash(Entry).
	LeafHash *tlog.Hash `json:"leaf_hash,omitempty"`
	// Kind is the audit entry kind, or "checkpoint".
	Kind string `json:"kind"`

	RequestID      string         `json:"request_id,omitempty"`
	Instance       string         `json:"instance,omitempty"`
	Route          string         `json:"route,omitempty"`
	Model          string         `json:"model,omitempty"`
	Outcome        string         `json:"outcome,omitempty"`
	RequestSHA256  string         `json:"request_sha256,omitempty"`
	ResponseSHA256 string         `json:"response_sha256,omitempty"`
	Recording      string         `json:"recording_digest,omitempty"`
	BytesIn        int64          `json:"bytes_in,omitempty"`
	BytesOut       int64          `json:"bytes_out,omitempty"`
	UpstreamNS     int64          `json:"upstream_ns,omitempty"`
	GatewayNS      int64          `json:"gateway_ns,omitempty"`
	ApprovalID     string         `json:"approval_id,omitempty"`
	GrantID        string         `json:"grant_id,omitempty"`
	Issuer         string         `json:"issuer,omitempty"`
	AuthMethod     string         `json:"auth_method,omitempty"`
	Decision       string         `json:"decision,omitempty"`
	MaskedEntities map[string]int `json:"masked_entities,omitempty"`
	Masking        []maskAction   `json:"masking,omitempty"`
	Details        map[string]any `json:"details,omitempty"`
	ParamsDropped  bool           `json:"params_dropped,omitempty"`

	Checkpoint *checkpointFields `json:"checkpoint,omitempty"`

	// Entry is the canonical entry (the bytes the leaf hash covers,
	// embedded as they are: canonical JSON is compact, so the encoder
	// keeps it byte for byte), so an offline verifier can bind every
	// field above to the signed tree. Absent when the sink drops
	// parameters.
	Entry json.RawMessage `json:"entry,omitempty"`
	// Frontier is set on the first event of each delivered batch: the
	// roots of the complete subtrees of the tree before this event (of
	// size Seq for an entry, Size for a checkpoint), largest first. From
	// it and the following leaf hashes a verifier recomputes the tree
	// hash at every exported checkpoint.
	Frontier []tlog.Hash `json:"frontier,omitempty"`
}

type maskAction struct {
	Rule        string `json:"rule"`
	Entity      string `json:"entity,omitempty"`
	Location    string `json:"location,omitempty"`
	Count       int    `json:"count"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

type checkpointFields struct {
	Size int64     `json:"size"`
	Hash tlog.Hash `json:"hash"`
	Time string    `json:"time"`
	// Note is the signed note (C2SP tlog-checkpoint), with any witness
	// cosignature lines.
	Note string `json:"note"`
}

// marshalEvent encodes ev as encoding/json would without HTML escaping
// (so <, >, & stay as they are in the log), with the hand-written
// encoder of ocsf_encode.go. It encodes into a pooled scratch buffer
// and returns an exact-size copy: a presized buffer was either too small
// (an event is about 3.5 × its embedded entry, and growing it copied and
// zeroed the event twice) or too large (and an event cached for the other
// sinks kept the slack alive). sizeHint is the first guess for a fresh
// scratch buffer.
func marshalEvent(ev *ocsfEvent, sizeHint int) ([]byte, error) {
	sp, _ := encodeScratch.Get().(*[]byte)
	if sp == nil {
		sp = new([]byte)
	}
	if cap(*sp) < sizeHint {
		*sp = make([]byte, 0, sizeHint)
	}
	b, err := appendEventJSON((*sp)[:0], ev)
	var out []byte
	if err == nil {
		// Clone allocates len(b) and copies without zeroing first.
		out = bytes.Clone(b)
	}
	if cap(b) <= maxScratch {
		*sp = b[:0]
		encodeScratch.Put(sp)
	}
	return out, err
}

// encodeScratch holds *[]byte encoding buffers for marshalEvent; one
// larger than maxScratch (an event with a huge entry) is not kept.
var encodeScratch sync.Pool

const maxScratch = 256 << 10
