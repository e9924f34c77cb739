package export

import (
	"fmt"

	"github.com/wardenhq/warden/internal/audit"
)

// The monitoring kinds (A.8.16) map to Event Log Activity (1008), the
// class of the log's own checkpoints and verification: they are about
// the delivery of the log, not about a request.

// logActivity fills the attributes every monitoring event shares.
func logActivity(m *Mapper, ev *ocsfEvent, activity int, name string) {
	setClass(ev, classEventLog, activity, name)
	ev.Actor = &actor{AppName: ProductName}
	if ev.Device == nil {
		ev.Device = &device{Name: m.Origin, TypeID: 1, Type: "Server"}
		addProfile(ev, "host")
	}
	ev.LogName, ev.LogProvider = m.Origin, logProvider
}

// failedAlert marks ev a failed, critical alert from a security
// control, with statusDetail.
func failedAlert(ev *ocsfEvent, statusDetail string) {
	setStatus(ev, 2, "")
	setSeverity(ev, 5)
	ev.StatusDetail = statusDetail
	alert := true
	ev.IsAlert = &alert
	addProfile(ev, "security_control")
}

// mapExportDeadLettered: Export (3), failed: a sink refused an event.
func mapExportDeadLettered(m *Mapper, e *audit.Entry, ev *ocsfEvent) {
	logActivity(m, ev, 3, "")
	setStatus(ev, 2, "")
	setSeverity(ev, 3)
	ev.StatusDetail = detail(e, "reason")
	ev.Message = fmt.Sprintf("export sink %s refused event %s (%s): %s", detail(e, "sink"), detail(e, "uid"), detail(e, "kind"), ev.StatusDetail)
}

// mapExportStatus: Export (3), succeeded: the delivery state.
func mapExportStatus(m *Mapper, e *audit.Entry, ev *ocsfEvent) {
	logActivity(m, ev, 3, "")
	setStatus(ev, 1, "")
	ev.Message = "export status"
	if r := detail(e, "reason"); r != "" {
		ev.Message += " (" + r + ")"
	}
}

// mapWitnessRefused: Other (99, "Witness"), failed, an alert: a witness
// refused the log's checkpoint.
func mapWitnessRefused(m *Mapper, e *audit.Entry, ev *ocsfEvent) {
	logActivity(m, ev, 99, "Witness")
	failedAlert(ev, detail(e, "reason"))
	ev.Message = fmt.Sprintf("witness %s %s the checkpoint of size %s: %s", detail(e, "witness"), detail(e, "result"), detail(e, "size"), ev.StatusDetail)
}
