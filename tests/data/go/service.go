// A small Go HTTP service for the live tests, standard library only: it serves its own gauges in
// the Prometheus text format on /metrics (go_goroutines, go_memstats_heap_inuse_bytes,
// process_open_fds, app_sessions{pool="main"}) and Go's heap profile on /debug/pprof/heap.
// It prints its address ("listening 127.0.0.1:PORT") on standard output once it serves: a free
// port of its own, or the address in the environment variable ADDR (for a test that must know
// the port before the service starts, such as one that passes --pprof to the sentinel).
//
// Usage: service [goroutine-leak-every] [heap-leak-every]
//
//	goroutine-leak-every: a goroutine blocked forever in waitForever every D (0: none).
//	heap-leak-every:      64 KiB kept by rememberOrder every D (0: none).
//
// Clean or not, it keeps a churn of short-lived worker goroutines (20–60 alive, a 20-s cycle)
// and of garbage, so the totals /proc sees swing while the gauges of a clean run stay bounded.
package main

import (
	"fmt"
	"math"
	"math/rand"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

var (
	kept     [][]byte
	keptMu   sync.Mutex
	blocked  = make(chan struct{})
	sessions int64
)

// rememberOrder keeps 64 KiB for good: the planted heap leak.
//
//go:noinline
func rememberOrder() {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i)
	}
	keptMu.Lock()
	kept = append(kept, b)
	keptMu.Unlock()
}

// waitForever blocks until the process ends: the planted goroutine leak.
//
//go:noinline
func waitForever() {
	<-blocked
}

func openFDs() int {
	d, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(d)
}

func metrics(w http.ResponseWriter, _ *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# HELP go_goroutines Number of goroutines that currently exist.\n")
	fmt.Fprintf(w, "# TYPE go_goroutines gauge\n")
	fmt.Fprintf(w, "go_goroutines %d\n", runtime.NumGoroutine())
	fmt.Fprintf(w, "# TYPE go_memstats_heap_inuse_bytes gauge\n")
	fmt.Fprintf(w, "go_memstats_heap_inuse_bytes %d\n", m.HeapInuse)
	fmt.Fprintf(w, "# TYPE process_open_fds gauge\n")
	fmt.Fprintf(w, "process_open_fds %d\n", openFDs())
	fmt.Fprintf(w, "# TYPE app_sessions gauge\n")
	fmt.Fprintf(w, "app_sessions{pool=\"main\"} %d\n", atomic.LoadInt64(&sessions))
	fmt.Fprintf(w, "app_sessions{pool=\"spare\"} 3\n")
}

func every(d time.Duration, f func()) {
	if d <= 0 {
		return
	}
	go func() {
		for range time.Tick(d) {
			f()
		}
	}()
}

func parse(i int) time.Duration {
	if len(os.Args) <= i {
		return 0
	}
	d, err := time.ParseDuration(os.Args[i])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bad duration %q: %v\n", os.Args[i], err)
		os.Exit(2)
	}
	return d
}

func main() {
	goroutineLeak, heapLeak := parse(1), parse(2)
	http.HandleFunc("/metrics", metrics)
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() { _ = http.Serve(ln, nil) }()
	every(goroutineLeak, func() { go waitForever() })
	every(heapLeak, rememberOrder)
	// The churn: workers that each live 0.2–1 s and allocate garbage.
	start := time.Now()
	var live int64
	go func() {
		for range time.Tick(20 * time.Millisecond) {
			phase := time.Since(start).Seconds() / 20
			want := int64(40 + 20*math.Sin(2*math.Pi*phase))
			atomic.StoreInt64(&sessions, want)
			for atomic.LoadInt64(&live) < want {
				atomic.AddInt64(&live, 1)
				go func() {
					defer atomic.AddInt64(&live, -1)
					junk := make([]byte, 16<<10+rand.Intn(64<<10))
					time.Sleep(time.Duration(200+rand.Intn(800)) * time.Millisecond)
					junk[0] = 1
				}()
			}
		}
	}()
	fmt.Printf("listening %s\n", ln.Addr())
	os.Stdout.Sync()
	select {}
}
