package peers

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procStat is the parent and the CPU time of one process.
type procStat struct {
	ppid int
	cpu  time.Duration // utime + stime
}

// readStat parses /proc/PID/stat (the command name, in parentheses, may
// hold spaces and parentheses: the fields start after the last ')').
func readStat(pid int) (procStat, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("peers: /proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(data[i+1:])
	// After the name: state(3) ppid(4) … utime(14) stime(15).
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("peers: /proc/%d/stat: %d fields", pid, len(f))
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	ut, err2 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err3 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procStat{}, fmt.Errorf("peers: /proc/%d/stat: bad field", pid)
	}
	return procStat{ppid: ppid, cpu: time.Duration(ut+st) * clockTick}, nil
}

// treeCPU is the CPU time (utime+stime) of root and every process under
// it, as the process table stands now, and how many processes that is.
// A process that exited since the last call is not counted: a server's
// processes are expected to live through a round.
func treeCPU(root int) (time.Duration, int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, fmt.Errorf("peers: %w", err)
	}
	stats := map[int]procStat{}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		s, err := readStat(pid)
		if err != nil {
			continue // exited meanwhile
		}
		stats[pid] = s
		children[s.ppid] = append(children[s.ppid], pid)
	}
	if _, ok := stats[root]; !ok {
		return 0, 0, fmt.Errorf("peers: process %d is gone", root)
	}
	var total time.Duration
	n := 0
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		total += stats[pid].cpu
		n++
		queue = append(queue, children[pid]...)
	}
	return total, n, nil
}

// selfCPU is this process's CPU time so far (user + system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU is the whole machine's busy CPU time (user, nice, system,
// irq, softirq) and stolen time so far, from /proc/stat.
func machineCPU() (busy, steal time.Duration) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, 0
	}
	v := func(i int) time.Duration {
		n, _ := strconv.ParseInt(string(f[i]), 10, 64)
		return time.Duration(n) * clockTick
	}
	return v(1) + v(2) + v(3) + v(6) + v(7), v(8)
}

// LoadAvg is /proc/loadavg's first three fields.
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := bytes.Fields(data)
	if len(f) < 3 {
		return "?"
	}
	return string(bytes.Join(f[:3], []byte(" ")))
}
