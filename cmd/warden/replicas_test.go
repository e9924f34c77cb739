package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/postgres"
)

// testDatabase creates a fresh PostgreSQL database for one test and
// returns its DSN; it is dropped at the end.
func testDatabase(t *testing.T) string {
	t.Helper()
	base := os.Getenv("WARDEN_TEST_POSTGRES")
	if base == "" {
		t.Skip("WARDEN_TEST_POSTGRES not set; skipping PostgreSQL test")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("WARDEN_TEST_POSTGRES is set but unreachable: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "warden_e2e_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		conn.Close(context.Background())
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("WARDEN_TEST_POSTGRES must be a URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

const replicaPolicy = `version: 1
rules:
  - name: chat
    when: request.path == "/v1/chat/completions" && principal.in_group("ml-users")
    action: allow
  - name: fine-tuning
    when: request.path.glob("/v1/fine_tuning/**") && principal.in_group("ml-users")
    action: require_approval
    approval: finetune
approvals:
  finetune:
    kind: one_time
    mode: hold
    reviewers: [ml-approvers]
    hold_timeout: 2m
`

// TestThreeReplicasOnePostgres runs three `warden serve` processes on one
// PostgreSQL: all admit requests concurrently into one gap-free log that
// `warden verify` accepts, and a request held on replica A is released
// when bob approves it through replica B.
func TestThreeReplicasOnePostgres(t *testing.T) {
	dsn := testDatabase(t)
	dir := t.TempDir()
	shared := filepath.Join(dir, "shared")
	signer := filepath.Join(shared, "audit.signer")
	if _, err := audit.GenerateKeyFiles(signer, "warden-replicas-test"); err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(shared, "policy.yaml")
	if err := os.WriteFile(pf, []byte(replicaPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	issuer, idpURL, upURL := startIssuer(t)

	type replica struct {
		name, gw, admin string
		cmd             *exec.Cmd
	}
	var reps []*replica
	for _, name := range []string{"a", "b", "c"} {
		r := &replica{name: name, gw: freeAddr(t), admin: freeAddr(t)}
		cfg := fmt.Sprintf(`listen: %s
admin_listen: %s
data_dir: %s
instance: replica-%s
routes:
  - {name: openai, path_prefix: /v1/, upstream: %s, profile: openai}
identity:
  issuers:
    - {issuer: %s, audiences: [warden]}
policy:
  file: %s
audit:
  store: postgres
  dsn: %s
  signing_key_file: %s
  checkpoint_every: 100
  checkpoint_interval: 500ms
`, r.gw, r.admin, filepath.Join(dir, name), name, upURL, idpURL, pf, dsn, signer)
		cp := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(cp, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		r.cmd = startServe(t, cp, r.admin)
		reps = append(reps, r)
	}
	defer func() {
		for _, r := range reps {
			_ = r.cmd.Process.Kill()
			_ = r.cmd.Wait()
		}
	}()
	alice, bob := token(t, issuer, "alice"), token(t, issuer, "bob")
	post := func(addr, path, tok, body string) (*http.Response, error) {
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		return http.DefaultClient.Do(req)
	}

	// A fine-tuning job held on replica A …
	held := make(chan int, 1)
	go func() {
		resp, err := post(reps[0].gw, "/v1/fine_tuning/jobs", alice, `{"model":"warden-demo-small","training_file":"f"}`)
		if err != nil {
			held <- -1
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		held <- resp.StatusCode
	}()

	// … while all three replicas admit chat requests concurrently.
	var ok atomic.Int64
	var wg sync.WaitGroup
	const perWorker = 15
	for _, r := range reps {
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perWorker; i++ {
					resp, err := post(r.gw, "/v1/chat/completions", alice, `{"model":"warden-demo-small","messages":[]}`)
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						ok.Add(1)
					} else {
						t.Errorf("replica %s: status %d", r.name, resp.StatusCode)
					}
				}
			}()
		}
	}

	// bob finds the pending request through replica B and approves it there.
	var id string
	for i := 0; i < 150 && id == ""; i++ {
		req, _ := http.NewRequest("GET", "http://"+reps[1].admin+"/v1/approvals?state=pending", nil)
		req.Header.Set("Authorization", "Bearer "+bob)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Approvals []struct {
				ID string `json:"id"`
			} `json:"approvals"`
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_ = json.Unmarshal(b, &list)
		if len(list.Approvals) > 0 {
			id = list.Approvals[0].ID
		} else {
			var arr []struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(b, &arr) == nil && len(arr) > 0 {
				id = arr[0].ID
			}
		}
		if id == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if id == "" {
		t.Fatal("the held request never appeared as pending on replica B")
	}
	resp, err := post(reps[1].admin, "/v1/approvals/"+id+"/approve", bob, `{"reason":"reviewed"}`)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("approve via replica B: %d", resp.StatusCode)
	}
	select {
	case st := <-held:
		if st != 200 {
			t.Fatalf("held request on replica A ended with %d after approval on B", st)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("held request on replica A was not released by the approval on B")
	}
	wg.Wait()

	for _, r := range reps {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, r := range reps {
		_ = r.cmd.Wait()
	}

	out, err := exec.Command(wardenBin, "verify", "--dsn", dsn, "--key", filepath.Join(shared, audit.VerifierFile)).CombinedOutput()
	if err != nil {
		t.Fatalf("warden verify of the shared log: %v\n%s", err, out)
	}
	st, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	instances := map[string]int{}
	admitted := 0
	for start := int64(0); ; {
		recs, err := st.Search(context.Background(), audit.Query{Kind: audit.KindRequestAdmitted, Start: start, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			e, err := audit.ParseEntry(rec.Seq, rec.Data)
			if err != nil {
				t.Fatal(err)
			}
			admitted++
			instances[e.Instance]++
		}
		if len(recs) < 1000 {
			break
		}
		start = recs[len(recs)-1].Seq + 1
	}
	want := int(ok.Load()) + 1 // the chats and the approved fine-tuning job
	if admitted != want || len(instances) != 3 {
		t.Fatalf("admitted %d entries from %v; want %d from 3 replicas", admitted, instances, want)
	}
	t.Logf("one verified log: %d admissions from %v\n%s", admitted, instances, out)
}
