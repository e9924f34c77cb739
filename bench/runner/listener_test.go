package runner

import (
	"fmt"
	"net"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestListenInodes(t *testing.T) {
	table := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:107E 00000000:0000 0A 00000000:00000000 00:00000000 00000000   107        0 21544 1 0000000000000000 100 0 0 10 0
   1: 0100007F:107E 0100007F:C350 01 00000000:00000000 00:00000000 00000000   107        0 99999 1 0000000000000000 20 4 30 10 -1
   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 30001 1 0000000000000000 100 0 0 10 0
`)
	if got, want := listenInodes(table, 4222), []string{"21544"}; !reflect.DeepEqual(got, want) {
		t.Errorf("port 4222: got %v, want %v (the established connection must not count)", got, want)
	}
	if got, want := listenInodes(table, 8080), []string{"30001"}; !reflect.DeepEqual(got, want) {
		t.Errorf("port 8080: got %v, want %v", got, want)
	}
	if got := listenInodes(table, 1234); got != nil {
		t.Errorf("port 1234: got %v, want none", got)
	}
}

func TestListenerPID(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp on this system")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if got := listenerPID(fmt.Sprintf("nats://127.0.0.1:%d", port)); got != os.Getpid() {
		t.Errorf("listenerPID = %d, want this process %d", got, os.Getpid())
	}
	if got := listenerPID(fmt.Sprintf("nats://192.0.2.1:%d", port)); got != 0 {
		t.Errorf("a non-loopback host: listenerPID = %d, want 0", got)
	}
	l.Close()
	if got := listenerPID(fmt.Sprintf("nats://127.0.0.1:%d", port)); got != 0 {
		t.Errorf("after close: listenerPID = %d, want 0", got)
	}
}

// The export stage's sink server CPU (the NATS server on this machine)
// reaches the export check and the cost table, apart from other load.
func TestSinkCPUReported(t *testing.T) {
	rep := &Report{
		Settings: Settings{Conns: []int{64}},
		Closed: []Row{
			{Workload: "chat-c64", Target: "go-floor", RPS: 1000, RatioFloor: 1, CPUPer1k: 0.2, Valid: true},
			{Workload: "chat-c64", Target: "warden-full", RPS: 600, RatioFloor: 0.6, CPUPer1k: 0.35, Valid: true},
			{Workload: "chat-c64", Target: "warden-full+export", RPS: 480, RatioFloor: 0.48, CPUPer1k: 0.42, SinkCPUPer1k: 0.071, Valid: true},
		},
	}
	var export string
	for _, c := range checks(rep) {
		if c.Target == "warden-full+export" && strings.Contains(c.Name, "within 10%") {
			export = c.Measured
		}
	}
	if !strings.Contains(export, "the NATS server on this machine used 71 CPU-µs per request") {
		t.Errorf("export check does not report the sink server's CPU: %q", export)
	}
	md := rep.Markdown()
	if !strings.Contains(md, "warden-full+export: the NATS server (same machine) used 71 CPU-µs per request") {
		t.Errorf("cost table does not report the sink server's CPU:\n%s", md)
	}
	if strings.Count(md, "the NATS server (same machine)") != 1 {
		t.Errorf("only the export row has a sink server:\n%s", md)
	}
}
