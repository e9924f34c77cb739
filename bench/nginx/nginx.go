package nginx

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"text/template"
)

//go:embed nginx.conf.tmpl
var confTemplate string

var tmpl = template.Must(template.New("nginx.conf").Parse(confTemplate))

// Config is what the generated nginx.conf needs.
type Config struct {
	// Dir is the prefix directory: config, pid, logs and temp files.
	Dir string
	// Listen is the proxy address, e.g. 127.0.0.1:18080.
	Listen string
	// Upstream is host:port of the model server.
	Upstream string
	// Workers is worker_processes (default 2).
	Workers int
}

// Render returns the nginx.conf text for c.
func Render(c Config) ([]byte, error) {
	if c.Workers <= 0 {
		c.Workers = 2
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, c); err != nil {
		return nil, fmt.Errorf("nginx: render config: %w", err)
	}
	return b.Bytes(), nil
}

// Find returns the path of the nginx binary, or an error saying why there
// is none.
func Find() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("nginx is not installed")
}

// Ensure returns the nginx binary, installing the Debian package with
// apt-get when it is missing and the process runs as root. The log
// function receives progress notes.
func Ensure(logf func(format string, args ...any)) (string, error) {
	if p, err := Find(); err == nil {
		return p, nil
	}
	apt, err := exec.LookPath("apt-get")
	if err != nil || os.Geteuid() != 0 {
		return "", errors.New("nginx is not installed and cannot be installed here (needs root and apt-get); skipping the nginx target")
	}
	logf("nginx not found: installing the Debian package with apt-get")
	install := func() error {
		cmd := exec.Command(apt, "install", "-y", "--no-install-recommends", "nginx")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, lastLines(out, 3))
		}
		return nil
	}
	if err := install(); err != nil {
		logf("apt-get install failed (%v); running apt-get update and retrying", err)
		if out, err := exec.Command(apt, "update").CombinedOutput(); err != nil {
			return "", fmt.Errorf("nginx: apt-get update: %w: %s", err, lastLines(out, 3))
		}
		if err := install(); err != nil {
			return "", fmt.Errorf("nginx: apt-get install: %w", err)
		}
	}
	return Find()
}

// Prepare writes nginx.conf into c.Dir and returns the command line that
// runs nginx in the foreground with it.
func Prepare(bin string, c Config) ([]string, error) {
	conf, err := Render(c)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(c.Dir, "nginx.conf")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		return nil, fmt.Errorf("nginx: write config: %w", err)
	}
	return []string{bin, "-e", filepath.Join(c.Dir, "error.log"), "-p", c.Dir, "-c", path}, nil
}

func lastLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte(" | ")))
}
