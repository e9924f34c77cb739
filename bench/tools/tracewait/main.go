// Command tracewait splits a runtime execution trace of Warden (the one
// `wardenbench -profile` takes in open loop) into what goroutines waited
// for, as markdown tables:
//
//   - blocked intervals by where the goroutine blocked (an admission
//     waiting for its group commit, a completion, the upstream, the next
//     request on a connection);
//   - run-queue delay (runnable → running) by what it had waited for,
//     i.e. CPU queueing after the wait ended;
//   - syscall durations by kind (fsync of a commit or of a WAL
//     checkpoint, by the audit writer or the search indexer; SQLite
//     pread/pwrite; network);
//   - runtime ranges (GC mark phase, assists, stop-the-world);
//   - how the audit writer's and the indexer's goroutines spent the trace
//     (running, runnable, in a syscall, waiting for work).
//
// Usage (its own module, so the main module does not depend on x/exp):
//
//	cd bench/tools/tracewait && go run . ../../results/FILE.trace
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

type stats map[string][]time.Duration

func (s stats) add(k string, d time.Duration) { s[k] = append(s[k], d) }

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(p * float64(len(ds)-1))
	return ds[i]
}

func (s stats) print(title string, span time.Duration) {
	fmt.Printf("\n### %s\n\n| what | count | per s | mean ms | p50 ms | p90 ms | p99 ms | max ms | total s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n", title)
	var keys []string
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }
	for _, k := range keys {
		ds := s[k]
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		fmt.Printf("| %s | %d | %.0f | %s | %s | %s | %s | %s | %.3f |\n", k, len(ds), float64(len(ds))/span.Seconds(), ms(sum/time.Duration(len(ds))), ms(pct(ds, .5)), ms(pct(ds, .9)), ms(pct(ds, .99)), ms(ds[len(ds)-1]), sum.Seconds())
	}
}

func stackText(s trace.Stack) string {
	var b strings.Builder
	for f := range s.Frames() {
		b.WriteString(f.Func)
		b.WriteByte('\n')
	}
	return b.String()
}

const (
	classAdmission = "admission: Append (waits for its group commit)"
	roleWriter     = "audit writer (Log.run)"
)

// span is an interval of a goroutine's life: what it was doing.
type span struct {
	from, to time.Duration
	what     string
}

// admissionParts integrates what the audit writer was doing over each
// admission's wait, and prints the mean composition over all admissions
// and over the slowest 10% and 1%.
func admissionParts(admissions, writer []span) {
	sort.Slice(admissions, func(i, j int) bool {
		return admissions[i].to-admissions[i].from < admissions[j].to-admissions[j].from
	})
	parts := make([]map[string]time.Duration, len(admissions))
	keys := map[string]bool{}
	for i, a := range admissions {
		m := map[string]time.Duration{}
		k := sort.Search(len(writer), func(k int) bool { return writer[k].to > a.from })
		covered := time.Duration(0)
		for ; k < len(writer) && writer[k].from < a.to; k++ {
			d := min(writer[k].to, a.to) - max(writer[k].from, a.from)
			if d > 0 {
				m[writer[k].what] += d
				covered += d
				keys[writer[k].what] = true
			}
		}
		if rest := a.to - a.from - covered; rest > 0 {
			m["(writer state unknown)"] += rest
			keys["(writer state unknown)"] = true
		}
		parts[i] = m
	}
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Printf("\n### What the audit writer was doing while admissions waited (mean ms per admission)\n\n")
	fmt.Printf("An admission waits for the batch in progress and then its own batch. Writer states: running = on a CPU; runnable = waiting for a CPU; waiting = idle between batches (or Gosched).\n\n")
	fmt.Printf("| writer state | all admissions | slowest 10%% | slowest 1%% |\n|---|---:|---:|---:|\n")
	mean := func(lo int, name string) float64 {
		var sum time.Duration
		for _, m := range parts[lo:] {
			sum += m[name]
		}
		return float64(sum) / 1e6 / float64(len(parts)-lo)
	}
	n := len(parts)
	if n == 0 {
		return
	}
	lo10, lo1 := n*9/10, n*99/100
	var t0, t10, t1 float64
	for _, name := range names {
		a, b, c := mean(0, name), mean(lo10, name), mean(lo1, name)
		t0, t10, t1 = t0+a, t10+b, t1+c
		fmt.Printf("| %s | %.3f | %.3f | %.3f |\n", name, a, b, c)
	}
	fmt.Printf("| **admission wait** | %.3f | %.3f | %.3f |\n", t0, t10, t1)
}

func classBlock(st string) string {
	has := func(x string) bool { return strings.Contains(st, x) }
	switch {
	case has("gcParkAssist") || has("gcAssistAlloc"):
		return "GC assist: allocating goroutine parked until the GC catches up"
	case (has("sync.(*Mutex).Lock") || has("sync.(*RWMutex)")) && has("audit.(*Log).appendInOrder"):
		return "Append: waiting for a lock before the hand-off"
	case has("audit.(*Log).appendInOrder") && has("gateway.(*Gateway).admit"):
		return classAdmission
	case has("audit.(*Log).appendInOrder") && has("complete.func"):
		return "completion: Append (background goroutine)"
	case has("audit.(*Log).appendInOrder"):
		return "other Append"
	case has("audit.(*Log).commit"):
		return "audit writer: blocked inside commit"
	case has("audit.(*Log).run"):
		return "audit writer: idle, waiting for appends"
	case has("Indexer"):
		return "indexer"
	case has("persistConn).roundTrip"):
		return "handler: waiting for upstream headers"
	case has("gateway.(*Gateway).ServeHTTP") || has("httputil"):
		return "handler: other wait in ServeHTTP"
	case has("net/http.(*conn).serve") || has("net/http.(*conn).readRequest") || has("connReader"):
		return "server conn: waiting for next request"
	case has("persistConn).readLoop") || has("persistConn).writeLoop"):
		return "upstream conn loops"
	case has("gcBgMarkWorker"):
		return "GC worker"
	}
	first := st
	if i := strings.IndexByte(st, '\n'); i > 0 {
		first = st[:i]
	}
	return "other: " + first
}

func classSyscall(st string) string {
	has := func(x string) bool { return strings.Contains(st, x) }
	switch {
	case has("unixSync") || has("Xfsync") || has("Fdatasync") || has("Fsync"):
		who := "audit writer"
		if has("Indexer") {
			who = "indexer"
		} else if !has("audit.(*Log).commit") {
			who = "other"
		}
		if has("alCheckpoint") || has("sqlite3Checkpoint") || has("WalCheckpoint") {
			return "fsync (" + who + ", WAL checkpoint into the db file)"
		}
		return "fsync (" + who + ", commit)"
	case has("Xpwrite") || has("Xpread"):
		if has("Indexer") {
			return "sqlite pread/pwrite (indexer)"
		}
		return "sqlite pread/pwrite (writer)"
	case has("net.(*netFD).Write") || has("netFD).Read"):
		return "network read/write"
	}
	first := st
	if i := strings.IndexByte(st, '\n'); i > 0 {
		first = st[:i]
	}
	return "other: " + first
}

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	r, err := trace.NewReader(f)
	if err != nil {
		panic(err)
	}
	// TRACEWAIT_LONG=3ms prints the stack that ends each running slice
	// of a role's goroutine at least that long (to stderr).
	long, _ := time.ParseDuration(os.Getenv("TRACEWAIT_LONG"))
	blocked, runq, sys := stats{}, stats{}, stats{}
	gcs := stats{}
	type gstate struct {
		since time.Duration
		class string
		role  string
		last  time.Duration // time of the last transition
		state trace.GoState // state since last
		in    map[trace.GoState]time.Duration
		on    bool // running or in a syscall (holding a P) since onAt
		onAt  time.Duration
		runAt time.Duration // running since
	}
	gs := map[trace.GoID]*gstate{}
	var writer, admissions []span
	// onCPU: stretches a goroutine of a role spent running or in a
	// syscall (holding its P, unless the syscall blocked long enough for
	// the P to be taken) without a break: how long it kept others off
	// that core.
	onCPU := stats{}
	running := stats{} // running slices alone (up to a syscall, a block or a preemption)
	sysClass := map[trace.GoID]string{}
	sysStart := map[trace.GoID]trace.Time{}
	rangeStart := map[string]trace.Time{}
	var first, last trace.Time
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		t := ev.Time()
		if first == 0 {
			first = t
		}
		last = t
		switch ev.Kind() {
		case trace.EventRangeBegin:
			rangeStart[ev.Range().Name] = t
		case trace.EventRangeEnd:
			n := ev.Range().Name
			if s, ok := rangeStart[n]; ok {
				gcs.add(n, t.Sub(s))
				delete(rangeStart, n)
			}
		case trace.EventStateTransition:
			st := ev.StateTransition()
			if st.Resource.Kind != trace.ResourceGoroutine {
				continue
			}
			id := st.Resource.Goroutine()
			from, to := st.Goroutine()
			g := gs[id]
			if g == nil {
				g = &gstate{since: time.Duration(t)}
				gs[id] = g
			}
			now := time.Duration(t)
			if g.in == nil {
				g.in = map[trace.GoState]time.Duration{}
			}
			if g.last != 0 {
				g.in[g.state] += now - g.last
				if g.role == roleWriter {
					what := g.state.String()
					if g.state == trace.GoSyscall {
						what = "syscall: " + sysClass[id]
					}
					writer = append(writer, span{g.last, now, what})
				}
			}
			g.last, g.state = now, to
			if from == trace.GoRunning && g.role != "" {
				running.add(g.role, now-g.runAt)
				if long > 0 && now-g.runAt >= long {
					fmt.Fprintf(os.Stderr, "%s ran %v until %v:\n%s\n", g.role, now-g.runAt, to, stackText(st.Stack))
				}
			}
			if to == trace.GoRunning {
				g.runAt = now
			}
			switch held := to == trace.GoRunning || to == trace.GoSyscall; {
			case held && !g.on:
				g.on, g.onAt = true, now
			case !held && g.on:
				g.on = false
				if g.role != "" {
					onCPU.add(g.role, now-g.onAt)
				}
			}
			if g.role == "" {
				stk := stackText(st.Stack)
				switch {
				case strings.Contains(stk, "audit.(*Log).run"):
					g.role = roleWriter
				case strings.Contains(stk, "audit.(*Indexer).run"):
					g.role = "search indexer"
				}
			}
			switch {
			case from == trace.GoRunning && to == trace.GoWaiting:
				g.class = classBlock(stackText(st.Stack))
				g.since = now
			case from == trace.GoWaiting && to == trace.GoRunnable:
				if g.class != "" {
					blocked.add(g.class, now-g.since)
					if g.class == classAdmission {
						admissions = append(admissions, span{g.since, now, ""})
					}
				}
				g.since = now
			case from == trace.GoRunnable && to == trace.GoRunning:
				if g.class != "" {
					runq.add("after "+g.class, now-g.since)
				} else {
					runq.add("after preemption/yield/create", now-g.since)
				}
				g.class = ""
			case from == trace.GoRunning && to == trace.GoRunnable:
				g.class = ""
				g.since = now
			case from == trace.GoRunning && to == trace.GoSyscall:
				sysClass[id] = classSyscall(stackText(st.Stack))
				sysStart[id] = t
			case from == trace.GoSyscall:
				if c, ok := sysClass[id]; ok {
					sys.add(c, t.Sub(sysStart[id]))
					delete(sysClass, id)
				}
				if to == trace.GoRunnable {
					g.class = "syscall return"
					g.since = now
				}
			}
		}
	}
	span := last.Sub(first)
	fmt.Printf("trace span %.2f s\n", span.Seconds())
	blocked.print("Blocked (waiting) intervals, by where the goroutine blocked", span)
	runq.print("Run-queue delay (runnable → running), by what the goroutine had waited for", span)
	sys.print("Syscalls (durations)", span)
	gcs.print("Runtime ranges (GC phases, STW)", span)
	running.print("Running slices of single goroutines (from running to a syscall, a block, a yield or a preemption)", span)
	onCPU.print("Unbroken stretches on a CPU (running or in a syscall) of single goroutines", span)
	admissionParts(admissions, writer)
	fmt.Printf("\n### Time of single goroutines by state (share of the trace span)\n\n| goroutine | running | runnable (waiting for a P) | syscall | waiting |\n|---|---:|---:|---:|---:|\n")
	ids := make([]trace.GoID, 0, len(gs))
	for id, g := range gs {
		if g.role != "" {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		g := gs[id]
		g.in[g.state] += time.Duration(last) - g.last
		p := func(s trace.GoState) string { return fmt.Sprintf("%.1f%%", 100*float64(g.in[s])/float64(span)) }
		fmt.Printf("| %s | %s | %s | %s | %s |\n", g.role, p(trace.GoRunning), p(trace.GoRunnable), p(trace.GoSyscall), p(trace.GoWaiting))
	}
}
