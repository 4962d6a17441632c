package tuigateway

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Linux signal names, by number (the same on x86 and arm).
var signalNames = [...]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP",
	6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1",
	11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
	16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP",
	21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ",
	26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR",
	31: "SIGSYS",
}

func signalName(s syscall.Signal) string {
	n := int(s)
	if n > 0 && n < len(signalNames) {
		return signalNames[n]
	}
	return fmt.Sprintf("SIG%d", n)
}

// signalNumber maps "SIGTERM" (or "SIG34", or "15") to its number; 0 if
// unknown.
func signalNumber(name string) int {
	if name == "" {
		return 0
	}
	for n, s := range signalNames {
		if s == name {
			return n
		}
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(name, "SIG")); err == nil && n > 0 && n <= 64 {
		return n
	}
	return 0
}

// leadsGroup reports whether pid exists (running or an unreaped zombie) and
// leads its process group, so that signalling the group by that id cannot
// hit a stranger that reused it.
func leadsGroup(pid int) bool {
	if pid <= 1 {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) state ppid pgrp ...": comm may hold spaces and parens.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 3 {
		return false
	}
	pgrp, err := strconv.Atoi(fields[2])
	return err == nil && pgrp == pid
}
