// Command hopfloor measures the floor of a process hop on this machine:
// the CPU of one small request and its answer over TCP loopback, between
// two processes or between two goroutines of one process, with nothing
// else on the path (no batching, no crypto, no HTTP). Issue 17's target
// counts it among the extra work Trent's design requires
// (docs/benchmarks.md, "Issue 17's target against the design's floor"),
// and kmspeers runs it (two processes, at 16 callers and at 1) as part of
// the floor it measures in each run.
//
//	go run ./kmsload/cmd/hopfloor -callers 16            # two processes
//	go run ./kmsload/cmd/hopfloor -callers 16 -inproc    # one process
//
// The server reads 68-byte messages on one goroutine and answers each
// from a goroutine of its own, as an HSM node serves frames; the
// client's callers share one connection, each writing its message and
// waiting for its echo. The CPU counted is both processes' user and
// system time (getrusage, and /proc/PID/stat for the child).
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const msgSize = 68

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hopfloor:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("n", 100000, "round trips")
	callers := flag.Int("callers", 1, "concurrent callers on the one connection")
	inproc := flag.Bool("inproc", false, "serve from a goroutine of this process, not from a second process")
	serveAddr := flag.String("serve", "", "(internal) serve on this address")
	flag.Parse()
	if *serveAddr != "" {
		ln, err := net.Listen("tcp", *serveAddr)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		return serve(ln)
	}
	if *callers < 1 || *n < *callers {
		return fmt.Errorf("want 1 ≤ callers ≤ n")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	var child *exec.Cmd
	if *inproc {
		go serve(ln)
	} else {
		ln.Close()
		self, err := os.Executable()
		if err != nil {
			return err
		}
		child = exec.Command(self, "-serve", addr)
		out, err := child.StdoutPipe()
		if err != nil {
			return err
		}
		if err := child.Start(); err != nil {
			return err
		}
		defer child.Process.Kill()
		if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
			return err
		}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	waiters := make([]chan struct{}, *callers)
	for i := range waiters {
		waiters[i] = make(chan struct{}, 1)
	}
	go func() {
		buf := make([]byte, msgSize)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			waiters[binary.BigEndian.Uint32(buf)] <- struct{}{}
		}
	}()
	per := *n / *callers
	cpu0, child0 := selfCPU(), procCPU(child)
	start := time.Now()
	var wmu sync.Mutex
	var wg sync.WaitGroup
	for i := range *callers {
		wg.Go(func() {
			msg := make([]byte, msgSize)
			binary.BigEndian.PutUint32(msg, uint32(i))
			for range per {
				wmu.Lock()
				c.Write(msg)
				wmu.Unlock()
				<-waiters[i]
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := selfCPU() - cpu0 + procCPU(child) - child0
	trips := float64(per * *callers)
	where := "two processes"
	if *inproc {
		where = "one process"
	}
	fmt.Printf("%s, %d callers, %.0f round trips: %.1f µs of CPU per round trip (both sides), %.1f µs of time\n",
		where, *callers, trips, float64(cpu.Nanoseconds())/trips/1e3, float64(elapsed.Nanoseconds())/trips/1e3)
	return nil
}

// serve echoes each message of each connection from a goroutine of its
// own.
func serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			var mu sync.Mutex
			for {
				buf := make([]byte, msgSize)
				if _, err := io.ReadFull(c, buf); err != nil {
					c.Close()
					return
				}
				go func() {
					mu.Lock()
					c.Write(buf)
					mu.Unlock()
				}()
			}
		}()
	}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is a child's utime+stime from /proc/PID/stat (0 for none).
func procCPU(cmd *exec.Cmd) time.Duration {
	if cmd == nil {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}
