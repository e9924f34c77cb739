package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadyzWriteProbeSQLite: on SQLite, once an append has failed because
// the disk cannot write (here: a full tmpfs under data_dir, in a private
// user and mount namespace), /readyz stays 503 while the disk still
// reads but cannot write — the read probe alone turned it 200 at once —
// and turns 200 again when space comes back, after which requests are
// served.
func TestReadyzWriteProbeSQLite(t *testing.T) {
	if err := exec.Command("unshare", "-rm", "true").Run(); err != nil {
		t.Skipf("no unprivileged user and mount namespaces here (unshare -rm): %v", err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"object":"chat.completion","choices":[{"message":{"content":"ok"}}]}`))
	}))
	t.Cleanup(up.Close)
	dir, gwAddr, adminAddr, cfgPath := crashConfig(t, up.URL, "timeouts: {store: 2s}\n")
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	// data_dir is a 16 MiB tmpfs only this process sees (the frame file
	// preallocates 4 MiB ahead, decision 044).
	cmd := exec.Command("unshare", "-rm", "sh", "-c",
		`mount -t tmpfs -o size=16m tmpfs "$1" && exec "$2" serve --config "$3" --log-level warn`, "sh", data, wardenBin, cfgPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	readyz := func() int {
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + adminAddr + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitReadyz := func(want int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for readyz() != want {
			if time.Now().After(deadline) {
				t.Fatalf("/readyz never answered %d; stderr:\n%s", want, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	chat := func() int {
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Post("http://"+gwAddr+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"demo","messages":[{"role":"user","content":"`+strings.Repeat("x", 2000)+`"}]}`))
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitReadyz(http.StatusOK)
	if st := chat(); st != http.StatusOK {
		t.Fatalf("before the disk filled: %d", st)
	}
	// Fill the tmpfs through the process's view of its mount namespace.
	view := filepath.Join("/proc", fmt.Sprint(cmd.Process.Pid), "root", data)
	filler := filepath.Join(view, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	for _, n := range []int{4096, 512, 1} { // the last bytes too
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	f.Close()
	// The frame file's preallocated zeros (decision 044, up to ~6 MiB)
	// take appends until they run out: then an append needs the disk.
	failed := false
	for range 20000 {
		if st := chat(); st == http.StatusServiceUnavailable {
			failed = true
			break
		}
	}
	if !failed {
		t.Fatal("no append failed on a full disk")
	}
	// The disk still reads: the read probe passes, but the store cannot
	// write, so /readyz must stay 503.
	for i := range 10 {
		if st := readyz(); st != http.StatusServiceUnavailable {
			t.Fatalf("/readyz poll %d on a full disk: %d, want 503", i, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitReadyz(http.StatusOK)
	deadline := time.Now().Add(60 * time.Second)
	for chat() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("no request served after the disk recovered; stderr:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
