package runner

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime/stime in /proc/PID/stat; it is
// 100 on every Linux architecture Go supports.
const clockTick = 100

// procTree returns pid and all its live descendants.
func procTree(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	parent := map[int]int{}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(n); err == nil {
			parent[n] = st.ppid
		}
	}
	tree := []int{pid}
	in := map[int]bool{pid: true}
	for changed := true; changed; {
		changed = false
		for c, pp := range parent {
			if in[pp] && !in[c] {
				in[c] = true
				tree = append(tree, c)
				changed = true
			}
		}
	}
	return tree
}

type stat struct {
	ppid         int
	utime, stime uint64
}

func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	return parseStat(b)
}

// parseStat reads ppid, utime and stime from a /proc/PID/stat line. The
// command name is in parentheses and may hold spaces, so fields are
// counted from the last ')'.
func parseStat(b []byte) (stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("procstat: malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field N is f[N-3].
	if len(f) < 13 {
		return stat{}, fmt.Errorf("procstat: short stat (%d fields)", len(f))
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseUint(f[11], 10, 64)
	stt, err3 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return stat{}, fmt.Errorf("procstat: bad numbers in stat")
	}
	return stat{ppid: ppid, utime: ut, stime: stt}, nil
}

// CPUTime is the user+system CPU time used so far by pid and its live
// descendants.
func CPUTime(pid int) (time.Duration, error) {
	var ticks uint64
	for i, p := range procTree(pid) {
		st, err := readStat(p)
		if err != nil {
			if i == 0 {
				return 0, err
			}
			continue
		}
		ticks += st.utime + st.stime
	}
	return time.Duration(ticks) * time.Second / clockTick, nil
}

// PeakRSS is the sum of VmHWM (peak resident set) of pid and its live
// descendants, in bytes.
func PeakRSS(pid int) (int64, error) {
	var total int64
	for i, p := range procTree(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			if i == 0 {
				return 0, err
			}
			continue
		}
		kb, err := parseHWM(b)
		if err != nil && i == 0 {
			return 0, err
		}
		total += kb * 1024
	}
	return total, nil
}

func parseHWM(b []byte) (int64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("procstat: no VmHWM")
}

// MachineBusy is the CPU time all processes on the machine have used
// (every CPU's user, nice, system and steal time from /proc/stat), so a measurement can tell how much CPU went to processes
// other than the ones it runs.
func MachineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseMachineBusy(b)
}

func parseMachineBusy(b []byte) (time.Duration, error) {
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("procstat: malformed /proc/stat")
	}
	var busy uint64
	for i, v := range f[1:9] {
		// user nice system idle iowait irq softirq steal: count the time
		// processes ran and steal; leave out idle and iowait, and irq and
		// softirq, which the harness's own loopback traffic causes.
		if i == 3 || i == 4 || i == 5 || i == 6 {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("procstat: /proc/stat: %w", err)
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTick, nil
}
