// Command harness times blivet against the daemonizers users would pick
// instead, in one run, and writes bench/RESULTS.md. bench/peers/run builds
// it with every peer program and calls it; see that script.
//
// Every launcher is started with fork+exec from here and timed until it
// exits (launch), or wrapped in the one poller, timed until the pidfile
// names a live process (ready). The harness is a child subreaper, so every
// daemon a run leaves behind is re-parented to it and killed and reaped by
// PID between runs, outside the timed part. Runs of the tools interleave
// (run i of every tool, then run i+1), so drift hits all rows alike.
package main

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var (
	runs    = flag.Int("runs", 100, "timed runs per row")
	warmup  = flag.Int("warmup", 3, "untimed runs per row first")
	bin     = flag.String("bin", "", "directory with floor, poller, libdaemon, godaemon, vividcortex, daemonize (ours)")
	before  = flag.String("before", "", "optional directory with daemonize, daemonize-static, libdaemon, libdaemon-static built from an older blivet (the before rows)")
	beforeV = flag.String("before-rev", "", "the older blivet's commit, for the notes")
	debian  = flag.String("debian", "", "Debian's daemonize")
	ssd     = flag.String("ssd", "/usr/sbin/start-stop-daemon", "start-stop-daemon")
	setsid  = flag.String("setsid", "/usr/bin/setsid", "util-linux setsid")
	sleep   = flag.String("sleep", "/usr/bin/sleep", "the program the non-Go tools start")
	truebin = flag.String("true", "/usr/bin/true", "a program that exits 0 at once")
	out     = flag.String("out", "", "write the Markdown results here")
	phase   = flag.String("phase", "", "internal: fd phase at -limit, JSON on stdout")
	limit   = flag.Int("limit", 0, "internal: RLIMIT_NOFILE for the fd phase")
	hard    = flag.Int("hard", 0, "the highest RLIMIT_NOFILE to test (default: ulimit -Hn)")
)

// tool is one launcher under test.
type tool struct {
	name    string
	argv    func(pidfile string) []string
	pidfile bool // it writes a pidfile, so it gets a ready figure
	note    string
}

type stats struct {
	Min, Med, Max time.Duration
	N             int
}

func summarize(ds []time.Duration) stats {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return stats{}
	}
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return stats{Min: s[0], Med: med, Max: s[n-1], N: n}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e6) }

func (s stats) String() string {
	if s.N == 0 {
		return "-"
	}
	return ms(s.Min) + " / " + ms(s.Med) + " / " + ms(s.Max)
}

// loadavg is /proc/loadavg when the harness started.
var loadavg string

// stolen is the share of CPU time the hypervisor took from this machine
// while the launch and ready rows ran ("" when /proc/stat does not say):
// on a VM whose neighbours are busy, every row slows, and not evenly.
var stolen string

// cpuTimes is the first line of /proc/stat: the machine's CPU time by
// state, in ticks (user nice system idle iowait irq softirq steal ...).
func cpuTimes() []uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return nil
	}
	var t []uint64
	for _, s := range f[1:] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil
		}
		t = append(t, n)
	}
	return t
}

// stealShare formats the steal ticks between two cpuTimes readings as a
// percentage of all ticks.
func stealShare(a, b []uint64) string {
	if len(a) < 8 || len(b) < 8 {
		return ""
	}
	var total uint64
	for i := range a {
		if i < len(b) {
			total += b[i] - a[i]
		}
	}
	if total == 0 {
		return ""
	}
	return fmt.Sprintf("%.1f%%", 100*float64(b[7]-a[7])/float64(total))
}

func main() {
	flag.Parse()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		loadavg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		die("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	work, err := os.MkdirTemp("", "blivet-bench-")
	if err != nil {
		die("%v", err)
	}
	defer os.RemoveAll(work)
	if *phase == "fd" {
		fdPhase(work)
		return
	}
	mainPhase(work)
}

func tools() []tool {
	b := func(name string) string { return filepath.Join(*bin, name) }
	o := func(name string) string { return filepath.Join(*before, name) }
	ts := []tool{
		{name: nameFloor, note: "os.StartProcess with Setsid, exits once exec'd",
			argv: func(string) []string { return []string{b("floor"), *sleep, "100000"} }},
		{name: nameRequired, pidfile: true, note: "the floor plus /dev/null, a locked pidfile and a second clone",
			argv: func(p string) []string { return []string{b("required"), p, *sleep, "100000"} }},
		{name: nameCLI, pidfile: true, note: "plain go build (static); waits for the exec",
			argv: func(p string) []string { return []string{b("daemonize"), "-p", p, *sleep, "100000"} }},
		{name: nameLib, pidfile: true, note: "plain go build (static); waits for ready",
			argv: func(p string) []string { return []string{b("libdaemon"), p} }},
	}
	if *before != "" {
		ts = append(ts,
			tool{name: nameOldCLI, pidfile: true, note: "before (" + *beforeV + "), plain go build: " + linkage(o("daemonize")),
				argv: func(p string) []string { return []string{o("daemonize"), "-p", p, *sleep, "100000"} }},
			tool{name: nameOldCLIStatic, pidfile: true, note: "before, CGO_ENABLED=0",
				argv: func(p string) []string { return []string{o("daemonize-static"), "-p", p, *sleep, "100000"} }},
			tool{name: nameOldLib, pidfile: true, note: "before, plain go build: " + linkage(o("libdaemon")),
				argv: func(p string) []string { return []string{o("libdaemon"), p} }},
			tool{name: nameOldLibStatic, pidfile: true, note: "before, CGO_ENABLED=0",
				argv: func(p string) []string { return []string{o("libdaemon-static"), p} }},
		)
	}
	return append(ts,
		tool{name: nameDebian, pidfile: true, note: "forks once, no wait",
			argv: func(p string) []string { return []string{*debian, "-p", p, *sleep, "100000"} }},
		tool{name: "start-stop-daemon --background", pidfile: true, note: "--make-pidfile",
			argv: func(p string) []string {
				return []string{*ssd, "--start", "--background", "--make-pidfile", "--pidfile", p, "--exec", *sleep, "--", "100000"}
			}},
		tool{name: "setsid -f", note: "one fork, no checks",
			argv: func(string) []string { return []string{*setsid, "-f", *sleep, "100000"} }},
		tool{name: nameGoDaemon, pidfile: true, note: "one re-exec, no wait",
			argv: func(p string) []string { return []string{b("godaemon"), p} }},
		tool{name: "godaemon (VividCortex)", note: "no pidfile",
			argv: func(string) []string { return []string{b("vividcortex")} }},
	)
}

// linkage says how the program at path is linked: "dynamic" when it asks
// for an ELF interpreter (the dynamic loader), else "static".
func linkage(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "dynamic"
		}
	}
	return "static"
}

// Row names the targets refer to.
const (
	nameFloor        = "floor (bench/peers/cmd/floor)"
	nameRequired     = "required work (bench/peers/cmd/required)"
	nameCLI          = "blivet CLI (ours)"
	nameLib          = "blivet library (ours)"
	nameOldCLI       = "blivet CLI, before"
	nameOldCLIStatic = "blivet CLI, before, static"
	nameOldLib       = "blivet library, before"
	nameOldLibStatic = "blivet library, before, static"
	nameDebian       = "Debian daemonize"
	nameGoDaemon     = "go-daemon (sevlyar)"
)

// runner starts launchers with stdin and stdout on /dev/null and stderr
// in a scratch file (shown when a launcher fails).
type runner struct {
	null, errf *os.File
	env        []string
}

func newRunner(work string) *runner {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		die("%v", err)
	}
	errf, err := os.Create(filepath.Join(work, "stderr"))
	if err != nil {
		die("%v", err)
	}
	return &runner{null: null, errf: errf, env: os.Environ()}
}

// time runs argv to its exit and returns how long that took.
func (r *runner) time(argv []string) (time.Duration, error) {
	_ = r.errf.Truncate(0)
	_, _ = r.errf.Seek(0, io.SeekStart)
	attr := &syscall.ProcAttr{Env: r.env, Files: []uintptr{r.null.Fd(), r.null.Fd(), r.errf.Fd()}}
	start := time.Now()
	pid, err := syscall.ForkExec(argv[0], argv, attr)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", argv[0], err)
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	d := time.Since(start)
	if err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
		msg, _ := os.ReadFile(r.errf.Name())
		return 0, fmt.Errorf("%s: %v %v: %s", strings.Join(argv, " "), ws, err, bytes.TrimSpace(msg))
	}
	return d, nil
}

// reapAll kills every child of the harness (the daemons re-parented to
// it) by PID and reaps it, until none is left.
func reapAll() {
	self := os.Getpid()
	for {
		for _, pid := range children(self) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(-1, &ws, 0, nil); err == syscall.ECHILD {
			return
		}
	}
}

// children lists the processes whose parent is ppid.
func children(ppid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}

// row is one measured line of a table.
type row struct {
	Name   string
	Note   string
	Launch stats
	Ready  stats
	Extra  string
}

// measure times every argv function round-robin: warmup untimed rounds,
// then runs timed ones. pre runs before each launch (outside the timing).
func measure(r *runner, work string, names []string, argvs []func(string) []string) ([][]time.Duration, error) {
	return measureWith(r, work, names, argvs, nil)
}

// measureWith is measure with before(k) run ahead of each launch of row k,
// outside the timed part.
func measureWith(r *runner, work string, names []string, argvs []func(string) []string, before func(k int)) ([][]time.Duration, error) {
	res := make([][]time.Duration, len(argvs))
	pidfile := filepath.Join(work, "daemon.pid")
	for i := 0; i < *warmup+*runs; i++ {
		for k, argv := range argvs {
			if before != nil {
				before(k)
			}
			_ = os.Remove(pidfile)
			d, err := r.time(argv(pidfile))
			reapAll()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", names[k], err)
			}
			if i >= *warmup {
				res[k] = append(res[k], d)
			}
		}
	}
	return res, nil
}

func mainPhase(work string) {
	r := newRunner(work)
	ts := tools()
	poller := filepath.Join(*bin, "poller")

	// 1 and 2: launch, and ready through the poller.
	var names []string
	var argvs []func(string) []string
	for _, t := range ts {
		names = append(names, t.name)
		argvs = append(argvs, t.argv)
	}
	for _, t := range ts {
		if t.pidfile {
			names = append(names, t.name+" (ready)")
			argvs = append(argvs, func(p string) []string { return append([]string{poller, p, "--"}, t.argv(p)...) })
		}
	}
	// The poller's own cost: a launcher that exits at once, with a
	// pidfile that already names a live process (the harness).
	alive := filepath.Join(work, "alive.pid")
	if err := os.WriteFile(alive, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		die("%v", err)
	}
	names = append(names, "poller alone")
	argvs = append(argvs, func(string) []string { return []string{poller, alive, "--", *truebin} })
	fmt.Fprintf(os.Stderr, "launch and ready: %d rows x %d runs (+%d warmup)...\n", len(argvs), *runs, *warmup)
	before := cpuTimes()
	res, err := measure(r, work, names, argvs)
	stolen = stealShare(before, cpuTimes())
	if err != nil {
		die("%v", err)
	}
	var rows []row
	k := len(ts)
	for i, t := range ts {
		rw := row{Name: t.name, Note: t.note, Launch: summarize(res[i])}
		if t.pidfile {
			rw.Ready = summarize(res[k])
			k++
		}
		rows = append(rows, rw)
	}
	pollerRow := row{Name: "poller alone (" + *truebin + ")", Note: "poller start + exec + one check", Ready: summarize(res[k])}

	// 3: fd closing, each limit in a re-executed harness.
	hardMax := *hard
	if hardMax == 0 {
		var rl unix.Rlimit
		_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &rl)
		hardMax = int(rl.Max)
	}
	fmt.Fprintf(os.Stderr, "fd closing at RLIMIT_NOFILE 1024 and %d, interleaved...\n", hardMax)
	fdRows := runFDPhase(hardMax)

	// 4: what the daemon costs.
	fmt.Fprintln(os.Stderr, "idle daemon cost...")
	costs := costRows(r, work)

	// 5: Go runtime starts per launch, under strace.
	fmt.Fprintln(os.Stderr, "Go starts per launch (strace)...")
	var starts []goStart
	for _, t := range ts {
		switch t.name {
		case nameFloor, nameRequired, nameCLI, nameLib, nameOldCLI, nameOldLib, nameGoDaemon:
			starts = append(starts, countGoStarts(r, work, t))
		}
	}

	md := render(rows, pollerRow, fdRows, costs, starts, hardMax)
	fmt.Print(md)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
			die("%v", err)
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
	}
}

// runFDPhase re-executes the harness for the fd phase (so the main phase
// keeps its own fd table) with hard as the highest limit, and collects its
// rows.
func runFDPhase(hard int) []row {
	args := append([]string{"-phase", "fd", "-limit", strconv.Itoa(hard)}, passFlags()...)
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Stderr = os.Stderr
	outb, err := cmd.Output()
	if err != nil {
		die("fd phase: %v", err)
	}
	var rows []row
	if err := json.Unmarshal(outb, &rows); err != nil {
		die("fd phase: %v", err)
	}
	return rows
}

func passFlags() []string {
	var a []string
	flag.Visit(func(f *flag.Flag) {
		if f.Name != "out" && f.Name != "phase" && f.Name != "limit" {
			a = append(a, "-"+f.Name+"="+f.Value.String())
		}
	})
	return a
}

// fdLayout puts the launcher in the state measured at limit l: soft and
// hard RLIMIT_NOFILE both l for l = the hard limit, soft l for l = 1024
// (a lowered hard limit could not be raised again for the next launch,
// and nothing launched here reads the hard limit); fds 100..999 open and
// inheritable (opened once), and l-1, with the other limit's top fd
// closed, so the table a fork copies ends at l-1 (Linux copies up to the
// highest open fd).
func fdLayout(null *os.File, l, hard int) int {
	other := hard - 1
	if l == hard {
		other = 1024 - 1
	}
	_ = unix.Close(other)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: uint64(l), Max: uint64(hard)}); err != nil {
		die("setrlimit %d: %v", l, err)
	}
	if err := unix.Dup2(int(null.Fd()), l-1); err != nil {
		die("dup2 %d: %v", l-1, err)
	}
	return l - 1
}

// fdPhase launches ours (and Debian's, for reference) with ~900 inherited
// open fds (100..999 and limit-1), at RLIMIT_NOFILE 1024 and at the hard
// limit, interleaved run by run, so closing them cannot be skipped, a
// loop to the limit would show, and drift between the limits cancels out.
func fdPhase(work string) {
	hard := *limit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: uint64(hard), Max: uint64(hard)}); err != nil {
		die("setrlimit %d: %v", hard, err)
	}
	r := newRunner(work)
	fds := 0
	for fd := 100; fd < 1000; fd++ {
		if err := unix.Dup2(int(r.null.Fd()), fd); err != nil {
			die("dup2 %d: %v", fd, err)
		}
		fds++
	}
	fds++ // limit-1
	ts := tools()
	var pick []tool
	for _, t := range ts {
		switch t.name {
		case nameCLI, nameLib, nameOldCLI, nameOldLib, nameDebian:
			pick = append(pick, t)
		}
	}
	limits := []int{1024, hard}
	var names []string
	var argvs []func(string) []string
	var at []int
	for _, t := range pick {
		for _, l := range limits {
			names = append(names, fmt.Sprintf("%s at %d", t.name, l))
			argvs = append(argvs, t.argv)
			at = append(at, l)
		}
	}
	res, err := measureWith(r, work, names, argvs, func(k int) { fdLayout(r.null, at[k], hard) })
	if err != nil {
		die("%v", err)
	}
	// Check once that the daemon really inherited none of them.
	var rows []row
	k := 0
	for _, t := range pick {
		for _, l := range limits {
			fdLayout(r.null, l, hard)
			leaked := daemonFDs(r, work, t)
			rows = append(rows, row{Name: t.name, Launch: summarize(res[k]),
				Note:  fmt.Sprintf("RLIMIT_NOFILE %d, %d fds open in the launcher", l, fds),
				Extra: leaked})
			k++
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(rows); err != nil {
		die("%v", err)
	}
}

// daemonFDs launches t once and returns the daemon's open fds above 2.
func daemonFDs(r *runner, work string, t tool) string {
	pidfile := filepath.Join(work, "daemon.pid")
	_ = os.Remove(pidfile)
	defer reapAll()
	if _, err := r.time(append([]string{filepath.Join(*bin, "poller"), pidfile, "--"}, t.argv(pidfile)...)); err != nil {
		return "?"
	}
	data, _ := os.ReadFile(pidfile)
	pid := strings.TrimSpace(string(data))
	// A launcher may return while the program is still starting: its
	// dynamic loader or locale set-up can hold a file open for a moment.
	// What the daemon inherited stays for its whole life, so count the
	// fewest fds seen over 100 ms.
	least := -1
	for i := 0; i < 50; i++ {
		ents, err := os.ReadDir("/proc/" + pid + "/fd")
		if err != nil {
			return "?"
		}
		n := 0
		for _, e := range ents {
			if fd, _ := strconv.Atoi(e.Name()); fd > 2 {
				n++
			}
		}
		if least < 0 || n < least {
			least = n
		}
		time.Sleep(2 * time.Millisecond)
	}
	return strconv.Itoa(least)
}

// cost is one idle daemon's footprint.
type cost struct {
	Name                     string
	Threads, RSSKB, Routines int
}

// costRows starts each Go daemon (and libdaemon not daemonized) with
// -report, waits for the report, lets it idle and reads /proc/PID/status.
func costRows(r *runner, work string) []cost {
	report := filepath.Join(work, "report")
	pidfile := filepath.Join(work, "cost.pid")
	b := func(name string) string { return filepath.Join(*bin, name) }
	cases := []struct {
		name  string
		argv  []string
		child bool // the harness starts it directly and does not wait
	}{
		{"libdaemon, not daemonized", []string{b("libdaemon"), "-plain", "-report", report, pidfile}, true},
		{"libdaemon, blivet.Daemonize", []string{b("libdaemon"), "-report", report, pidfile}, false},
		{"go-daemon (sevlyar)", []string{b("godaemon"), "-report", report, pidfile}, false},
		{"godaemon (VividCortex)", []string{b("vividcortex"), "-report", report}, false},
	}
	var out []cost
	for _, c := range cases {
		var th, rss, gr []int
		for i := 0; i < 5; i++ {
			_ = os.Remove(report)
			_ = os.Remove(pidfile)
			if c.child {
				if _, err := syscall.ForkExec(c.argv[0], c.argv, &syscall.ProcAttr{Env: r.env,
					Files: []uintptr{r.null.Fd(), r.null.Fd(), r.errf.Fd()}}); err != nil {
					die("%v", err)
				}
			} else if _, err := r.time(c.argv); err != nil {
				die("%v", err)
			}
			pid, g := awaitReport(report)
			// Let the runtime settle (sysmon, GC workers start lazily).
			time.Sleep(300 * time.Millisecond)
			t, m := status(pid)
			th, rss, gr = append(th, t), append(rss, m), append(gr, g)
			reapAll()
		}
		out = append(out, cost{Name: c.name, Threads: medianInt(th), RSSKB: medianInt(rss), Routines: medianInt(gr)})
	}
	return out
}

// goStart is what one launch executed, from strace -ff.
type goStart struct {
	Name  string
	Go    int      // execs of a Go program (re-execs through /proc/self/exe included)
	Execs []string // every successful execve, in no particular order
}

// countGoStarts runs t once under strace -ff -e trace=execve and counts
// the successful execs of Go binaries: a path is a Go binary when
// debug/buildinfo reads it; /proc/self/exe counts as one, since every
// program here that re-executes itself is a Go program.
func countGoStarts(r *runner, work string, t tool) goStart {
	gs := goStart{Name: t.name, Go: -1}
	strace, err := exec.LookPath("strace")
	if err != nil {
		return gs
	}
	dir := filepath.Join(work, "strace")
	_ = os.RemoveAll(dir)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return gs
	}
	pidfile := filepath.Join(work, "daemon.pid")
	_ = os.Remove(pidfile)
	// strace follows the daemon for ever: start it in the background, wait
	// until its first program (the poller, or the launcher for tools
	// without a pidfile) has exited, then let strace detach.
	first := t.argv(pidfile)
	if t.pidfile {
		first = append([]string{filepath.Join(*bin, "poller"), pidfile, "--"}, first...)
	}
	argv := append([]string{strace, "-I1", "-ff", "-q", "-e", "trace=execve", "-e", "signal=none", "-o", filepath.Join(dir, "t")}, first...)
	spid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Env: r.env, Files: []uintptr{r.null.Fd(), r.null.Fd(), r.errf.Fd()}})
	if err != nil {
		return gs
	}
	done := false
	for deadline := time.Now().Add(10 * time.Second); !done && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		files, _ := filepath.Glob(filepath.Join(dir, "t.*"))
		for _, f := range files {
			data, _ := os.ReadFile(f)
			if bytes.HasPrefix(data, []byte(`execve("`+first[0]+`"`)) && bytes.Contains(data, []byte("+++ exited with 0 +++")) {
				done = true
			}
		}
	}
	_ = syscall.Kill(spid, syscall.SIGTERM)
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(spid, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}
	reapAll()
	if !done {
		fmt.Fprintf(os.Stderr, "strace %s: the launch did not end within 10s\n", t.name)
		return gs
	}
	files, _ := filepath.Glob(filepath.Join(dir, "t.*"))
	gs.Go = 0
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.HasPrefix(line, "execve(\"") || !strings.HasSuffix(line, "= 0") {
				continue
			}
			path := line[len("execve(\""):]
			path = path[:strings.IndexByte(path, '"')]
			if t.pidfile && path == filepath.Join(*bin, "poller") {
				continue // the poller itself, not part of the launch
			}
			gs.Execs = append(gs.Execs, filepath.Base(path))
			if path == "/proc/self/exe" {
				gs.Go++
			} else if _, err := buildinfo.ReadFile(path); err == nil {
				gs.Go++
			}
		}
	}
	slices.Sort(gs.Execs)
	return gs
}

func awaitReport(path string) (pid, goroutines int) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if _, err := fmt.Sscan(string(data), &pid, &goroutines); err == nil {
			return pid, goroutines
		}
	}
	die("no report in %s", path)
	return 0, 0
}

func status(pid int) (threads, rssKB int) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		die("%v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "Threads":
			threads, _ = strconv.Atoi(f[0])
		case "VmRSS":
			rssKB, _ = strconv.Atoi(f[0])
		}
	}
	return threads, rssKB
}

func medianInt(v []int) int {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func ratio(a, b time.Duration) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}

func find(rows []row, name string) row {
	for _, r := range rows {
		if r.Name == name {
			return r
		}
	}
	return row{}
}

func cmdOut(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func met(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

func render(rows []row, pollerRow row, fdRows []row, costs []cost, starts []goStart, hardMax int) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	floor, gd := find(rows, nameFloor), find(rows, nameGoDaemon)
	p("# blivet against its peers\n\n")
	p("Generated by `bash bench/peers/run` (bench/peers/cmd/harness); do not edit by hand.\n\n")
	p("- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	p("- machine: %s cores (%s), Linux %s, %s; load average before the run: %s\n", cmdOut("nproc"), cpuModel(), cmdOut("uname", "-r"), cmdOut("go", "version"), loadavg)
	p("- runs: %d timed per row (after %d untimed), interleaved; times in ms as min / median / max\n", *runs, *warmup)
	if stolen != "" {
		p("- CPU time stolen by the hypervisor while the launch and ready rows ran: %s of the machine's\n", stolen)
		p("  (from /proc/stat: the higher it is, the less a ratio between rows from one run can be trusted)\n")
	}
	p("- reproduce: `bash bench/peers/run` (from the repository root)\n")
	p("- builds: every Go program with plain `go build`, as users get it (`file` says statically linked for all\n")
	p("  of them, ours included, since blivet no longer needs cgo)")
	if *before != "" {
		p("; the before rows are blivet at %s (plain `go build`: %s), also shown built\n  with CGO_ENABLED=0", *beforeV, linkage(filepath.Join(*before, "daemonize")))
	}
	p("\n\n")

	p("## Launch and ready\n\n")
	p("Launch: from fork+exec of the launcher until it exits. Ready: the same launcher run by the poller\n")
	p("(bench/peers/cmd/poller), until its pidfile names a live process; tools without a pidfile get none.\n")
	p("Every tool starts a long sleep (the Go peers idle in their own program). Each run's daemons are\n")
	p("killed and reaped by PID between runs, outside the timed part. The floor is a static Go program that\n")
	p("starts the sleep in a new session with os.StartProcess and exits once it is exec'd. \"Required work\" is\n")
	p("the floor plus what no launcher with a locked pidfile can skip (/dev/null as stdio; the pidfile opened\n")
	p("without following a link, checked, locked and written; a second clone for the double fork): its ratio\n")
	p("to the floor is a lower bound for any daemonizer keeping blivet's guarantees.\n\n")
	p("| tool | launch ms (min / med / max) | ready ms (min / med / max) | launch / floor | ready / go-daemon | ready - poller | note |\n")
	p("|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		net := "-"
		if r.Ready.N > 0 {
			net = ms(r.Ready.Med - pollerRow.Ready.Med)
		}
		p("| %s | %v | %v | %s | %s | %s | %s |\n", r.Name, r.Launch, r.Ready, ratio(r.Launch.Med, floor.Launch.Med), ratio(r.Ready.Med, gd.Ready.Med), net, r.Note)
	}
	p("| %s | - | %v | - | - | - | %s |\n\n", pollerRow.Name, pollerRow.Ready, pollerRow.Note)

	if len(starts) > 0 {
		p("## Go runtime starts per launch\n\n")
		p("One launch (through the poller for tools with a pidfile) under `strace -ff -e trace=execve`; a successful\n")
		p("execve counts as a Go start when debug/buildinfo reads the file (a re-exec through /proc/self/exe counts).\n\n")
		p("| tool | Go starts | programs exec'd |\n|---|---|---|\n")
		for _, g := range starts {
			n := "?"
			if g.Go >= 0 {
				n = strconv.Itoa(g.Go)
			}
			p("| %s | %s | %s |\n", g.Name, n, strings.Join(g.Execs, ", "))
		}
		p("\n")
	}

	p("## Fd closing\n\n")
	p("Launch (for ours: until ready or exec'd) with RLIMIT_NOFILE at the limit (at 1024 the soft limit, the hard\n")
	p("one staying at the highest) and %d fds open and inheritable in the launcher (100..999 and limit-1); both\n", 901)
	p("limits interleaved run by run in one process. \"daemon fds\" counts the fds\n")
	p("above 2 left open in the daemon (ours keep its pidfile lock; the CLI's daemon is sleep(1)).\n\n")
	p("| tool | RLIMIT_NOFILE | launch ms (min / med / max) | daemon fds > 2 |\n|---|---|---|---|\n")
	for _, r := range fdRows {
		lim := strings.Fields(strings.TrimPrefix(r.Note, "RLIMIT_NOFILE "))[0]
		lim = strings.TrimSuffix(lim, ",")
		p("| %s | %s | %v | %s |\n", r.Name, lim, r.Launch, r.Extra)
	}
	p("\n")
	p("## What the idle daemon costs\n\n")
	p("Threads and VmRSS from /proc/PID/status of the idle daemon (300 ms after it reported), median of 5;\n")
	p("goroutines as the program counts them (runtime.NumGoroutine).\n\n")
	p("| program | threads | VmRSS KiB | goroutines |\n|---|---|---|---|\n")
	for _, c := range costs {
		p("| %s | %d | %d | %d |\n", c.Name, c.Threads, c.RSSKB, c.Routines)
	}
	p("\n## Targets (issue 15)\n\n")
	cli, lib := find(rows, nameCLI), find(rows, nameLib)
	if floor.Launch.N > 0 && cli.Launch.N > 0 {
		r := float64(cli.Launch.Med) / float64(floor.Launch.Med)
		p("- CLI launch (plain go build) <= 1.15x the floor: %.2fx (%s vs %s ms median): %s\n", r, ms(cli.Launch.Med), ms(floor.Launch.Med), met(r <= 1.15))
		if req := find(rows, nameRequired); req.Launch.N > 0 {
			p("  - of which the required work (bench/peers/cmd/required): %.2fx the floor; the CLI is %.2fx the required work\n",
				float64(req.Launch.Med)/float64(floor.Launch.Med), float64(cli.Launch.Med)/float64(req.Launch.Med))
		}
	}
	if gd.Ready.N > 0 && lib.Ready.N > 0 {
		r := float64(lib.Ready.Med) / float64(gd.Ready.Med)
		p("- library ready <= 1.05x go-daemon's ready: %.2fx (%s vs %s ms median, same poller): %s\n", r, ms(lib.Ready.Med), ms(gd.Ready.Med), met(r <= 1.05))
	}
	var gsLib, gsGD = -1, -1
	for _, g := range starts {
		switch g.Name {
		case nameLib:
			gsLib = g.Go
		case nameGoDaemon:
			gsGD = g.Go
		}
	}
	if gsLib >= 0 && gsGD >= 0 {
		p("- library Go starts = go-daemon's: %d vs %d: %s\n", gsLib, gsGD, met(gsLib <= gsGD))
	}
	for _, name := range []string{nameLib, nameCLI} {
		lo, hi := fdPair(fdRows, name)
		if lo.Launch.N > 0 && hi.Launch.N > 0 {
			r := float64(hi.Launch.Med) / float64(lo.Launch.Med)
			p("- %s fd closing at %d within 1.1x of 1024: %.2fx (%s vs %s ms median, %+.2f ms): %s\n", name, hardMax, r, ms(hi.Launch.Med), ms(lo.Launch.Med), float64(hi.Launch.Med-lo.Launch.Med)/1e6, met(r <= 1.1))
		}
	}
	if dlo, dhi := fdPair(fdRows, nameDebian); dlo.Launch.N > 0 && dhi.Launch.N > 0 {
		p("  - for scale, Debian daemonize (closes nothing) at %d vs 1024: %.2fx (%+.2f ms): the kernel copies the\n", hardMax,
			float64(dhi.Launch.Med)/float64(dlo.Launch.Med), float64(dhi.Launch.Med-dlo.Launch.Med)/1e6)
		p("    launcher's larger fd table in every fork, whatever the tool does\n")
	}
	if len(costs) >= 2 {
		p("- idle daemon vs the same program not daemonized: %+d threads, %+d KiB RSS, %+d goroutines\n",
			costs[1].Threads-costs[0].Threads, costs[1].RSSKB-costs[0].RSSKB, costs[1].Routines-costs[0].Routines)
	}
	if *before != "" {
		p("\n## Before and after (same run)\n\n")
		p("| | before (%s) | after | after / before |\n|---|---|---|---|\n", *beforeV)
		for _, c := range []struct {
			label, old, now string
			ready           bool
		}{
			{"CLI launch, plain go build", nameOldCLI, nameCLI, false},
			{"CLI launch, CGO_ENABLED=0", nameOldCLIStatic, nameCLI, false},
			{"library ready, plain go build", nameOldLib, nameLib, true},
			{"library ready, CGO_ENABLED=0", nameOldLibStatic, nameLib, true},
		} {
			o, n := find(rows, c.old), find(rows, c.now)
			od, nd := o.Launch.Med, n.Launch.Med
			if c.ready {
				od, nd = o.Ready.Med, n.Ready.Med
			}
			p("| %s | %s ms (%s %s) | %s ms (%s) | %s |\n", c.label, ms(od), ratio(od, map[bool]time.Duration{false: floor.Launch.Med, true: gd.Ready.Med}[c.ready]),
				map[bool]string{false: "floor", true: "go-daemon"}[c.ready], ms(nd),
				ratio(nd, map[bool]time.Duration{false: floor.Launch.Med, true: gd.Ready.Med}[c.ready]), ratio(nd, od))
		}
	}
	p("\nWhere the time goes (strace/perf of a launch): see bench/ANALYSIS.md.\n")
	return b.String()
}

// fdPair returns name's fd-closing rows at 1024 and at the hard limit.
func fdPair(fdRows []row, name string) (lo, hi row) {
	for _, r := range fdRows {
		if r.Name == name && strings.HasPrefix(r.Note, "RLIMIT_NOFILE 1024,") {
			lo = r
		} else if r.Name == name {
			hi = r
		}
	}
	return lo, hi
}

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "harness: "+format+"\n", args...)
	reapAll()
	os.Exit(1)
}
