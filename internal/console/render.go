package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/identity"
)

// funcs are the template helpers. None returns template.HTML: every
// value is escaped by html/template in its context.
var funcs = template.FuncMap{
	"fmtTime": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"join": strings.Join,
	// decisions are the choices of the decision filter ("" is any).
	"decisions": func() []string { return []string{"", "allow", "deny", "require_approval"} },
	// approvals are the choices of the approval filter.
	"approvals": func() []string { return approvalChoices },
}

func (c *Console) parseTemplates() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	// Files whose name starts with "_" hold templates shared by several
	// pages (the witness status); every page gets them.
	partials, err := fs.Glob(templateFS, "templates/_*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".html")
		if base == "layout" || strings.HasPrefix(base, "_") {
			continue
		}
		files := append([]string{"templates/layout.html", n}, partials...)
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, files...)
		if err != nil {
			return fmt.Errorf("console: template %s: %w", n, err)
		}
		c.tmpl[base] = t
	}
	return nil
}

// view is what every page template gets.
type view struct {
	Title string
	User  *identity.Principal
	Data  any
}

// render writes page name with data, rendered to a buffer first so a
// template failure answers 500 instead of half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p *identity.Principal, data any) {
	t := c.tmpl[name]
	var buf bytes.Buffer
	if t == nil {
		c.log.Error("console: no template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.Execute(&buf, view{Title: name, User: p, Data: data}); err != nil {
		c.log.Error("console: render", "page", name, "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage answers with an HTML page saying msg.
func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, p *identity.Principal, status int, msg string) {
	c.render(w, r, status, "error", p, struct {
		Status  int
		Text    string
		Message string
	}{status, http.StatusText(status), msg})
}
