// memberlist-bench: the reference for doc/benchmarks.md ("Membership").
//
// Runs N hashicorp/memberlist nodes in this process on 127.0.0.1 with
// DefaultLANConfig (or DefaultLocalConfig with -local), joins them through
// node 0, measures join convergence, the traffic per node per second in a
// steady window, and the time until every other node reports a killed
// node (Shutdown without Leave) as gone.  -loss drops that fraction of
// outgoing UDP packets, to count false failures under loss.
//
// Build: contrib/bench/memberlist/run.sh (Debian's golang-go and
// golang-github-hashicorp-memberlist-dev, no network access needed).
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

var udpBytes, udpPkts, tcpBytes, tcpConns int64

// countingTransport counts what a node sends (UDP payloads, and TCP bytes
// written on connections it dials or accepts) and drops UDP packets at
// random.
type countingTransport struct {
	*memberlist.NetTransport
	loss    float64
	streams chan net.Conn
}

func newCountingTransport(nt *memberlist.NetTransport, loss float64) *countingTransport {
	t := &countingTransport{nt, loss, make(chan net.Conn)}
	go func() {
		for c := range nt.StreamCh() {
			t.streams <- countingConn{c}
		}
	}()
	return t
}

func (t *countingTransport) StreamCh() <-chan net.Conn { return t.streams }

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// memberlist sends through the NodeAwareTransport methods when the
// transport has them, so those are the ones to wrap.
func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.loss > 0 && rand.Float64() < t.loss {
		return time.Now(), nil
	}
	atomic.AddInt64(&udpBytes, int64(len(b)))
	atomic.AddInt64(&udpPkts, 1)
	return t.NetTransport.WriteToAddress(b, a)
}

type countingConn struct{ net.Conn }

func (c countingConn) Write(b []byte) (int, error) {
	atomic.AddInt64(&tcpBytes, int64(len(b)))
	return c.Conn.Write(b)
}

func (t *countingTransport) DialTimeout(addr string, d time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, d)
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, d time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialAddressTimeout(a, d)
	if err == nil {
		atomic.AddInt64(&tcpConns, 1)
		c = countingConn{c}
	}
	return c, err
}

type events struct {
	mu    sync.Mutex
	self  string
	gone  map[string]time.Time
	alive int
}

func (e *events) NotifyJoin(n *memberlist.Node) {
	e.mu.Lock()
	e.alive++
	e.mu.Unlock()
}
func (e *events) NotifyLeave(n *memberlist.Node) {
	e.mu.Lock()
	e.alive--
	if _, ok := e.gone[n.Name]; !ok {
		e.gone[n.Name] = time.Now()
	}
	e.mu.Unlock()
}
func (e *events) NotifyUpdate(n *memberlist.Node) {}

func main() {
	n := flag.Int("n", 8, "nodes")
	base := flag.Int("port", 30100, "first port")
	local := flag.Bool("local", false, "DefaultLocalConfig instead of DefaultLANConfig")
	loss := flag.Float64("loss", 0, "fraction of UDP packets dropped")
	steady := flag.Duration("steady", 30*time.Second, "steady window for traffic")
	kill := flag.Bool("kill", true, "kill one node and time its detection")
	flag.Parse()

	lists := make([]*memberlist.Memberlist, *n)
	evs := make([]*events, *n)
	for i := 0; i < *n; i++ {
		c := memberlist.DefaultLANConfig()
		if *local {
			c = memberlist.DefaultLocalConfig()
		}
		c.Name = fmt.Sprintf("m%d", i)
		c.BindAddr = "127.0.0.1"
		c.BindPort = *base + i
		c.AdvertisePort = *base + i
		c.LogOutput = io.Discard
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{"127.0.0.1"}, BindPort: *base + i, Logger: log.New(io.Discard, "", 0)})
		if err != nil {
			log.Fatal(err)
		}
		c.Transport = newCountingTransport(nt, *loss)
		evs[i] = &events{self: c.Name, gone: map[string]time.Time{}}
		c.Events = evs[i]
		if lists[i], err = memberlist.Create(c); err != nil {
			log.Fatal(err)
		}
	}
	t0 := time.Now()
	for i := 1; i < *n; i++ {
		if _, err := lists[i].Join([]string{fmt.Sprintf("127.0.0.1:%d", *base)}); err != nil {
			log.Fatal(err)
		}
	}
	for {
		done := true
		for _, e := range evs {
			e.mu.Lock()
			done = done && e.alive == *n
			e.mu.Unlock()
		}
		if done {
			break
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Printf("memberlist n=%d loss=%.2f local=%v: join convergence %.3f s\n", *n, *loss, *local,
		time.Since(t0).Seconds())
	u0, b0, p0 := atomic.LoadInt64(&udpBytes), atomic.LoadInt64(&tcpBytes), atomic.LoadInt64(&udpPkts)
	time.Sleep(*steady)
	du := atomic.LoadInt64(&udpBytes) - u0
	dt := atomic.LoadInt64(&tcpBytes) - b0
	dp := atomic.LoadInt64(&udpPkts) - p0
	s := steady.Seconds()
	fmt.Printf("steady %.0f s: %.1f datagrams, %.0f UDP bytes, %.0f TCP bytes per node per s\n",
		s, float64(dp)/float64(*n)/s, float64(du)/float64(*n)/s, float64(dt)/float64(*n)/s)
	false_gone := 0
	for _, e := range evs {
		e.mu.Lock()
		false_gone += len(e.gone)
		e.mu.Unlock()
	}
	fmt.Printf("false failures during the steady window: %d\n", false_gone)
	if !*kill {
		return
	}
	victim := *n - 1
	tk := time.Now()
	lists[victim].Shutdown()
	var times []float64
	for i := 0; i < victim; i++ {
		for {
			evs[i].mu.Lock()
			t, ok := evs[i].gone[fmt.Sprintf("m%d", victim)]
			evs[i].mu.Unlock()
			if ok {
				times = append(times, t.Sub(tk).Seconds())
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	sort.Float64s(times)
	fmt.Printf("kill: first detection %.3f s, all %d others %.3f s\n", times[0], len(times),
		times[len(times)-1])
}
