package admin

import (
	"context"
	"net/http"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/export"
)

// ExportStatus is what the export status endpoint reads
// (export.Service).
type ExportStatus interface {
	Status(ctx context.Context) (export.Report, error)
}

// exportRoutes serves the SIEM export's state.
func exportRoutes(s ExportStatus) []Route {
	return []Route{
		{Method: "GET", Path: "/v1/export/status", Role: Auditor, Handle: func(w http.ResponseWriter, r *http.Request) error {
			rep, err := s.Status(r.Context())
			if err != nil {
				return apierr.Wrap(apierr.Unavailable, "export status is unavailable", err)
			}
			return writeJSON(w, http.StatusOK, rep)
		},
			Summary: "Each export sink's cursor, lag and delivery counters, as this replica sees them",
			Reply: "`{\"exporting\":bool,\"since\",\"log_size\",\"error\",\"sinks\":[{\"sink\",\"cursor\",\"lag_entries\",\"lag_seconds\"," +
				"\"delivered\",\"failed\",\"dead_lettered\",\"filtered\",\"last_delivery\",\"last_error\",\"last_error_at\"}]}`; " +
				"with PostgreSQL only the exporting replica has live counters, the others show the saved cursors",
			Errors: []apierr.Code{apierr.Unavailable}},
	}
}
