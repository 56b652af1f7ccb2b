package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec/protobuf"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/gateway/foxglove"
	"github.com/colugo-go/colugo/transport/zmq"
)

// The Foxglove gateway's targets (issue 15). A paced publisher runs in a
// child process (this binary again, role webpub) on its absolute schedule;
// the bench process holds a direct colugo subscriber (a node of its own),
// the gateway (a node of its own, served on 127.0.0.1) and the WebSocket
// clients (github.com/coder/websocket, as the gateway). Every node uses
// the zmq transport and host-local discovery in a private directory that
// both processes share, so colugo's traffic goes over its abstract Unix
// sockets and the clients' over loopback TCP. Latency is arrival (after
// the whole message was read, in the receiving goroutine) minus the
// publisher's send time, which the direct subscriber gets as
// Received.SendTime and a client as messageData's timestamp: one host
// clock.

// WebStream is a paced stream through the gateway.
type WebStream struct {
	Name    string
	Codec   string // "protobuf": a google.protobuf.BytesValue of Size bytes; "json": colugo's default codec, Size bytes encoded
	Size    int
	Rate    int // messages per second, on an absolute schedule
	Clients int // WebSocket clients subscribed through the gateway
}

// The two streams.
var (
	// WebProto: 30 Hz of a 2 MiB bytes field (wrapperspb.BytesValue,
	// google/protobuf/wrappers.proto: a real generated message; the
	// protobuf codec advertises its descriptor) to one client.
	WebProto = WebStream{Name: "30Hz-2MiB-protobuf", Codec: "protobuf", Size: 2 << 20, Rate: 30, Clients: 1}
	// WebJSON: 1 kHz of a 1 KiB JSON object to four clients.
	WebJSON = WebStream{Name: "1kHz-1KiB-json", Codec: "json", Size: 1 << 10, Rate: 1000, Clients: 4}
)

// webSample is the JSON stream's value; Pad makes its encoding Size bytes.
type webSample struct {
	Seq int64  `json:"seq"`
	Pad string `json:"pad"`
}

// webSampleOf is message seq of a JSON stream of size bytes, its Pad cut
// from pad (at least size bytes long): {"seq":N,"pad":"…"} is 17 bytes
// besides N's digits and the pad.
func webSampleOf(seq int64, size int, pad string) webSample {
	return webSample{Seq: seq, Pad: pad[:max(0, size-17-len(strconv.FormatInt(seq, 10)))]}
}

const (
	roleWebPub = "webpub"
	webTopic   = "bench/web"
	// webQuiet ends the wait for a receiver that got nothing for this long
	// after the publisher's last message.
	webQuiet = time.Second
)

// WebRecv is what one receiver got of a run's measured messages.
type WebRecv struct {
	Got      int     // measured messages received
	Missing  int     // measured messages never received
	Rate     float64 // Hz: (Got-1) over the span from the first arrival to the last
	P50, P99 time.Duration
}

// WebResult is one run of a stream.
type WebResult struct {
	Stream    WebStream
	Published int     // measured messages (after the warm-up)
	PubRate   float64 // Hz the publisher achieved: (Published-1) over its first to last send
	PubLag    time.Duration
	Direct    WebRecv
	Clients   []WebRecv
	// GatewayDropped: the gateway's Stats().Dropped over the run (its
	// clients' queues); NodeDropped: its node's drops on the topic (the
	// gateway's colugo subscription, its drop policy).
	GatewayDropped, NodeDropped uint64
	// PairedP50 is, for the slowest client, the p50 over the messages both
	// got of its arrival minus the direct subscriber's: the gateway's cost
	// on the same message, which the difference of the p50s blurs.
	PairedP50 time.Duration
}

// AddedP50 is the worst client's p50 latency over the direct subscriber's.
func (r WebResult) AddedP50() time.Duration {
	var worst time.Duration
	for i, c := range r.Clients {
		if i == 0 || c.P50 > worst {
			worst = c.P50
		}
	}
	return worst - r.Direct.P50
}

// webPub is the publisher child's setup ("C" line).
type webPub struct{ Stream WebStream }

// webDone is the publisher child's account of a "G" ("D" line): it
// published seqs First..Last.
type webDone struct {
	First, Last         int64
	FirstSend, LastSend int64 // Unix ns
	MaxLag              time.Duration
}

func init() {
	if os.Getenv(roleEnv) != roleWebPub {
		return
	}
	if err := webPubChild(); err != nil {
		fmt.Fprintf(os.Stderr, "bench child %s (pid %d): %v\n", roleWebPub, os.Getpid(), err)
		os.Exit(1)
	}
	os.Exit(0)
}

func webNode(dir, name string) (*colugo.Node, error) {
	tr, err := zmq.New()
	if err != nil {
		return nil, err
	}
	return colugo.NewNode(name, colugo.WithTransport(tr), colugo.WithDiscovery(local.New(local.WithDir(dir))))
}

// webPubChild is the paced publisher. Protocol, after spawn's
// configuration line and "ready": parent "C {webPub}": make the node and
// publisher, child "C"; parent "W n": wait (15 s at most) for n
// subscriber nodes, child "W"; parent "G count": publish count messages
// at the stream's rate from now on, child "D {webDone}"; EOF: close and
// exit.
func webPubChild() error {
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		return errors.New("no configuration on stdin")
	}
	var cfg childConfig
	if err := json.Unmarshal(in.Bytes(), &cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	time.AfterFunc(max(cfg.Limit, time.Minute), func() {
		fmt.Fprintf(os.Stderr, "bench child %s (pid %d): over its bound, exiting\n", roleWebPub, os.Getpid())
		os.Exit(3)
	})
	out := &lineWriter{w: os.Stdout}
	out.printf("ready")
	var (
		node    *colugo.Node
		publish func(seq int64) error
		wait    func(n int) error
		stream  WebStream
		seq     int64
	)
	defer func() {
		if node != nil {
			_ = node.Close()
		}
	}()
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "C":
			var p webPub
			if err := json.Unmarshal([]byte(arg), &p); err != nil {
				return fmt.Errorf("setup %q: %w", arg, err)
			}
			n, err := webNode(cfg.Dir, "web-pub")
			if err != nil {
				return err
			}
			node, stream = n, p.Stream
			publish, wait, err = webPublisher(n, p.Stream)
			if err != nil {
				return err
			}
			out.printf("C")
		case "W":
			want, err := strconv.Atoi(arg)
			if err != nil || wait == nil {
				return fmt.Errorf("bad line %q", in.Text())
			}
			if err := wait(want); err != nil {
				return err
			}
			out.printf("W")
		case "G":
			count, err := strconv.ParseInt(arg, 10, 64)
			if err != nil || publish == nil {
				return fmt.Errorf("bad line %q", in.Text())
			}
			d, err := pace(publish, &seq, count, stream.Rate)
			if err != nil {
				return err
			}
			b, _ := json.Marshal(d)
			out.printf("D %s", b)
		}
	}
	return nil
}

// webPublisher makes s's publisher on n: publish sends message seq, wait
// waits for subscriber nodes.
func webPublisher(n *colugo.Node, s WebStream) (publish func(int64) error, wait func(int) error, err error) {
	ctx := context.Background()
	waitFn := func(w interface {
		WaitSubscribers(context.Context, int) error
	}) func(int) error {
		return func(want int) error {
			ctx, cancel := context.WithTimeout(ctx, setupTimeout)
			defer cancel()
			return w.WaitSubscribers(ctx, want)
		}
	}
	switch s.Codec {
	case "protobuf":
		p, err := colugo.NewPublisher[*wrapperspb.BytesValue](n, webTopic, colugo.WithCodec(protobuf.Codec{}))
		if err != nil {
			return nil, nil, err
		}
		m := &wrapperspb.BytesValue{Value: make([]byte, s.Size)}
		for i := range m.Value {
			m.Value[i] = byte(i * 7)
		}
		return func(seq int64) error {
			binary.LittleEndian.PutUint64(m.Value, uint64(seq))
			return p.Publish(ctx, m)
		}, waitFn(p), nil
	case "json":
		p, err := colugo.NewPublisher[webSample](n, webTopic)
		if err != nil {
			return nil, nil, err
		}
		pad := strings.Repeat("x", s.Size)
		return func(seq int64) error {
			return p.Publish(ctx, webSampleOf(seq, s.Size, pad))
		}, waitFn(p), nil
	}
	return nil, nil, fmt.Errorf("stream %s: unknown codec %q", s.Name, s.Codec)
}

// pace publishes count messages at rate, message i at start+i/rate (an
// absolute schedule: a late message does not shift the later ones),
// numbering them from *seq on.
func pace(publish func(int64) error, seq *int64, count int64, rate int) (webDone, error) {
	d := webDone{First: *seq}
	period := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range count {
		at := start.Add(time.Duration(i) * period)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		now := time.Now()
		if lag := now.Sub(at); lag > d.MaxLag {
			d.MaxLag = lag
		}
		if err := publish(*seq); err != nil {
			return d, err
		}
		if i == 0 {
			d.FirstSend = now.UnixNano()
		}
		d.LastSend = now.UnixNano()
		*seq++
	}
	d.Last = *seq - 1
	return d, nil
}

// arrival is one received message.
type arrival struct {
	seq     int64
	latency time.Duration
	at      int64 // Unix ns
}

// recvLog collects one receiver's arrivals; the receiving goroutine
// appends, the run reads after the wait.
type recvLog struct {
	mu     sync.Mutex
	got    []arrival
	maxSeq atomic.Int64
	notify chan struct{} // a message arrived (capacity 1)
}

func newRecvLog() *recvLog {
	l := &recvLog{notify: make(chan struct{}, 1)}
	l.maxSeq.Store(-1)
	return l
}

func (l *recvLog) add(seq, sendNs int64) {
	now := time.Now().UnixNano()
	l.mu.Lock()
	l.got = append(l.got, arrival{seq: seq, latency: time.Duration(now - sendNs), at: now})
	l.mu.Unlock()
	if seq > l.maxSeq.Load() {
		l.maxSeq.Store(seq)
	}
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

func (l *recvLog) reset() {
	l.mu.Lock()
	l.got = l.got[:0]
	l.mu.Unlock()
}

// waitFor waits until seq last arrived, or nothing arrived for webQuiet,
// and reports whether it arrived.
func (l *recvLog) waitFor(last int64) bool {
	t := time.NewTimer(webQuiet)
	defer t.Stop()
	for l.maxSeq.Load() < last {
		select {
		case <-l.notify:
			t.Reset(webQuiet)
		case <-t.C:
			return false
		}
	}
	return true
}

// summary is the receiver's account of seqs first..last.
func (l *recvLog) summary(first, last int64) WebRecv {
	l.mu.Lock()
	defer l.mu.Unlock()
	var r WebRecv
	var lat []time.Duration
	var t0, t1 int64
	seen := map[int64]bool{}
	for _, a := range l.got {
		if a.seq < first || a.seq > last || seen[a.seq] {
			continue
		}
		seen[a.seq] = true
		lat = append(lat, a.latency)
		if t0 == 0 || a.at < t0 {
			t0 = a.at
		}
		t1 = max(t1, a.at)
	}
	r.Got = len(lat)
	r.Missing = int(last-first+1) - r.Got
	if r.Got > 1 && t1 > t0 {
		r.Rate = float64(r.Got-1) / (float64(t1-t0) / 1e9)
	}
	q := quantiles(lat)
	r.P50, r.P99 = q.P50, q.P99
	return r
}

// paired is the p50 of l's arrival minus base's, over the seqs
// first..last that both got.
func (l *recvLog) paired(base *recvLog, first, last int64) time.Duration {
	base.mu.Lock()
	at := map[int64]int64{}
	for _, a := range base.got {
		if a.seq >= first && a.seq <= last {
			at[a.seq] = a.at
		}
	}
	base.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	var d []time.Duration
	for _, a := range l.got {
		if t, ok := at[a.seq]; ok {
			d = append(d, time.Duration(a.at-t))
			delete(at, a.seq) // once per seq
		}
	}
	return quantiles(d).P50
}

// WebRig is a stream's set-up: the publisher child, the direct
// subscriber, the gateway and its clients. Run measures; Close ends it.
type WebRig struct {
	s       WebStream
	dir     string
	pub     *child
	direct  *colugo.Node
	gw      *gatewayProc
	clients []*wsClient
	dlog    *recvLog
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// NewWebRig sets s up, ready for Run.
func NewWebRig(s WebStream) (_ *WebRig, err error) {
	r := &WebRig{s: s, dlog: newRecvLog()}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.dir, err = os.MkdirTemp("", "colugo-bench-*"); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if r.pub, err = startWebPub(r.dir, s); err != nil {
		return r, err
	}
	if r.direct, err = webNode(r.dir, "web-direct"); err != nil {
		return r, err
	}
	if err := r.subscribeDirect(ctx); err != nil {
		return r, err
	}
	if r.gw, err = startGateway(r.dir); err != nil {
		return r, err
	}
	for i := range s.Clients {
		c, err := dialGateway(ctx, r.gw.url, setupTimeout)
		if err != nil {
			return r, fmt.Errorf("client %d: %w", i, err)
		}
		r.clients = append(r.clients, c)
		if err := c.subscribe(ctx, webTopic, setupTimeout); err != nil {
			return r, fmt.Errorf("client %d: %w", i, err)
		}
		r.wg.Go(func() { c.receive(ctx, s.Codec) })
	}
	if err := r.pub.send("W 2"); err != nil { // the direct node and the gateway's
		return r, err
	}
	if _, err := r.pub.expect("W", setupTimeout+time.Second); err != nil {
		return r, err
	}
	return r, r.warmUp()
}

// warmUp publishes short bursts at the stream's rate until every receiver
// got the last message of one: each is subscribed (the publisher counts
// the gateway's subscription once, however many clients share it).
func (r *WebRig) warmUp() error {
	deadline := time.Now().Add(setupTimeout)
	for time.Now().Before(deadline) {
		done, err := r.publish(int64(max(2, r.s.Rate/20))) // 50 ms
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(r.logs(), func(l *recvLog) bool { return !l.waitFor(done.Last) }) {
			return nil
		}
	}
	return errors.New("a receiver got no warm-up message within the set-up timeout")
}

func (r *WebRig) logs() []*recvLog {
	logs := []*recvLog{r.dlog}
	for _, c := range r.clients {
		logs = append(logs, c.log)
	}
	return logs
}

// publish has the child publish count messages at the stream's rate.
func (r *WebRig) publish(count int64) (webDone, error) {
	var done webDone
	if err := r.pub.send("G %d", count); err != nil {
		return done, err
	}
	d := time.Duration(count) * time.Second / time.Duration(r.s.Rate)
	line, err := r.pub.expect("D ", d+setupTimeout)
	if err != nil {
		return done, err
	}
	return done, json.Unmarshal([]byte(strings.TrimPrefix(line, "D ")), &done)
}

func startWebPub(dir string, s WebStream) (*child, error) {
	k, _, err := spawn(roleWebPub, childConfig{Dir: dir, Limit: 10 * time.Minute})
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(webPub{Stream: s})
	if err := k.send("C %s", b); err != nil {
		k.Close()
		return nil, err
	}
	if _, err := k.expect("C", setupTimeout); err != nil {
		k.Close()
		return nil, err
	}
	return k, nil
}

func (r *WebRig) subscribeDirect(ctx context.Context) error {
	switch r.s.Codec {
	case "protobuf":
		ch, err := colugo.SubscribeReceived[*wrapperspb.BytesValue](ctx, r.direct, webTopic, colugo.WithCodec(protobuf.Codec{}))
		if err != nil {
			return err
		}
		r.wg.Go(func() {
			for m := range ch {
				if len(m.Value.Value) >= 8 {
					r.dlog.add(int64(binary.LittleEndian.Uint64(m.Value.Value)), m.SendTime.UnixNano())
				}
			}
		})
	default:
		ch, err := colugo.SubscribeReceived[webSample](ctx, r.direct, webTopic)
		if err != nil {
			return err
		}
		r.wg.Go(func() {
			for m := range ch {
				r.dlog.add(m.Value.Seq, m.SendTime.UnixNano())
			}
		})
	}
	return nil
}

// Run publishes count messages and reports what each receiver got.
func (r *WebRig) Run(count int) (WebResult, error) {
	logs := r.logs()
	for _, l := range logs {
		l.reset()
	}
	st0, nd0 := r.gw.g.Stats(), r.gw.node.Stats().Topics[webTopic]
	done, err := r.publish(int64(count))
	if err != nil {
		return WebResult{}, err
	}
	for _, l := range logs {
		l.waitFor(done.Last)
	}
	res := WebResult{Stream: r.s, Published: int(done.Last - done.First + 1), PubLag: done.MaxLag}
	if res.Published > 1 && done.LastSend > done.FirstSend {
		res.PubRate = float64(res.Published-1) / (float64(done.LastSend-done.FirstSend) / 1e9)
	}
	res.Direct = r.dlog.summary(done.First, done.Last)
	for i, c := range r.clients {
		res.Clients = append(res.Clients, c.log.summary(done.First, done.Last))
		if p := c.log.paired(r.dlog, done.First, done.Last); i == 0 || p > res.PairedP50 {
			res.PairedP50 = p
		}
	}
	st1, nd1 := r.gw.g.Stats(), r.gw.node.Stats().Topics[webTopic]
	res.GatewayDropped, res.NodeDropped = st1.Dropped-st0.Dropped, nd1.Dropped-nd0.Dropped
	return res, nil
}

// Close ends the rig: clients, gateway, direct node, publisher child.
func (r *WebRig) Close() {
	if r.cancel != nil {
		r.cancel()
	}
	for _, c := range r.clients {
		c.conn.CloseNow()
	}
	if r.gw != nil {
		r.gw.close()
	}
	if r.direct != nil {
		_ = r.direct.Close()
	}
	r.wg.Wait()
	if r.pub != nil {
		r.pub.Close()
	}
	if r.dir != "" {
		_ = os.RemoveAll(r.dir)
	}
}

// gatewayProc is a gateway on a node of its own, served on 127.0.0.1.
type gatewayProc struct {
	node *colugo.Node
	g    *foxglove.Gateway
	srv  *http.Server
	url  string
	done chan struct{}
}

func startGateway(dir string) (*gatewayProc, error) {
	n, err := webNode(dir, "web-gateway")
	if err != nil {
		return nil, err
	}
	g, err := foxglove.New(n)
	if err != nil {
		_ = n.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = g.Close()
		_ = n.Close()
		return nil, err
	}
	p := &gatewayProc{node: n, g: g, srv: &http.Server{Handler: g, ReadHeaderTimeout: 5 * time.Second},
		url: "ws://" + ln.Addr().String() + "/", done: make(chan struct{})}
	go func() { defer close(p.done); _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *gatewayProc) close() {
	_ = p.srv.Close()
	<-p.done
	_ = p.g.Close()
	_ = p.node.Close()
}

// wsClient is one Foxglove WebSocket client.
type wsClient struct {
	conn *websocket.Conn
	log  *recvLog
	sid  uint32
}

func dialGateway(ctx context.Context, url string, d time.Duration) (*wsClient, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{foxglove.SubprotocolSDK}})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(64 << 20)
	return &wsClient{conn: conn, log: newRecvLog()}, nil
}

// advert is the part of an advertise op the bench reads.
type advert struct {
	Op       string `json:"op"`
	Channels []struct {
		ID    uint32 `json:"id"`
		Topic string `json:"topic"`
	} `json:"channels"`
}

// waitAdvertise reads text ops until an advertise of topic, and returns
// its channel id.
func (c *wsClient) waitAdvertise(ctx context.Context, topic string, d time.Duration) (uint32, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		typ, b, err := c.conn.Read(ctx)
		if err != nil {
			return 0, fmt.Errorf("waiting for an advertise of %s: %w", topic, err)
		}
		if typ != websocket.MessageText {
			continue
		}
		var a advert
		if json.Unmarshal(b, &a) != nil || a.Op != "advertise" {
			continue
		}
		for _, ch := range a.Channels {
			if ch.Topic == topic {
				return ch.ID, nil
			}
		}
	}
}

func (c *wsClient) subscribe(ctx context.Context, topic string, d time.Duration) error {
	id, err := c.waitAdvertise(ctx, topic, d)
	if err != nil {
		return err
	}
	c.sid = 1
	b, _ := json.Marshal(map[string]any{"op": "subscribe", "subscriptions": []any{map[string]any{"id": c.sid, "channelId": id}}})
	return c.conn.Write(ctx, websocket.MessageText, b)
}

// receive logs messageData frames until the connection ends, reading each
// into one reused buffer (the client should not be what is measured).
func (c *wsClient) receive(ctx context.Context, codecName string) {
	buf := make([]byte, 0, 64<<10)
	for {
		typ, rd, err := c.conn.Reader(ctx)
		if err != nil {
			return
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = slices.Grow(buf, cap(buf))
			}
			n, err := rd.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return
			}
		}
		if typ != websocket.MessageBinary || len(buf) < 13 || buf[0] != 1 {
			continue
		}
		ts := int64(binary.LittleEndian.Uint64(buf[5:]))
		if seq, ok := seqOf(codecName, buf[13:]); ok {
			c.log.add(seq, ts)
		}
	}
}

// seqOf reads the sequence number of a stream's payload as published.
func seqOf(codecName string, p []byte) (int64, bool) {
	if codecName == "protobuf" { // BytesValue: field 1, bytes; the seq in its first 8
		num, typ, n := protowire.ConsumeTag(p)
		if n < 0 || num != 1 || typ != protowire.BytesType {
			return 0, false
		}
		v, m := protowire.ConsumeBytes(p[n:])
		if m < 0 || len(v) < 8 {
			return 0, false
		}
		return int64(binary.LittleEndian.Uint64(v)), true
	}
	rest, ok := strings.CutPrefix(string(p[:min(len(p), 32)]), `{"seq":`)
	if !ok {
		return 0, false
	}
	end := strings.IndexByte(rest, ',')
	if end < 0 {
		return 0, false
	}
	seq, err := strconv.ParseInt(rest[:end], 10, 64)
	return seq, err == nil
}

// WebStart is one gateway start against an existing publisher.
type WebStart struct {
	// Discovery: from a fresh node's NewNode until its Peers() holds the
	// publisher with the topic.
	Discovery time.Duration
	// Advertise: from the gateway's NewNode (then foxglove.New, listen,
	// a client's dial) until that client read an advertise of the topic.
	Advertise time.Duration
}

// WebStartRig is a publisher of an existing, idle topic, for gateway
// starts.
type WebStartRig struct {
	dir string
	pub *child
}

// NewWebStartRig starts the publisher child (WebJSON's topic, nothing
// published).
func NewWebStartRig() (*WebStartRig, error) {
	dir, err := os.MkdirTemp("", "colugo-bench-*")
	if err != nil {
		return nil, err
	}
	k, err := startWebPub(dir, WebJSON)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &WebStartRig{dir: dir, pub: k}, nil
}

// Close stops the publisher child.
func (s *WebStartRig) Close() {
	s.pub.Close()
	_ = os.RemoveAll(s.dir)
}

// Start measures one fresh node's discovery, then one gateway's start.
func (s *WebStartRig) Start() (WebStart, error) {
	var res WebStart
	var err error
	if res.Discovery, err = discover(s.dir, webTopic, setupTimeout); err != nil {
		return res, err
	}
	ctx := context.Background()
	t0 := time.Now()
	gw, err := startGateway(s.dir)
	if err != nil {
		return res, err
	}
	defer gw.close()
	c, err := dialGateway(ctx, gw.url, setupTimeout)
	if err != nil {
		return res, err
	}
	defer c.conn.CloseNow()
	if _, err := c.waitAdvertise(ctx, webTopic, setupTimeout); err != nil {
		return res, err
	}
	res.Advertise = time.Since(t0)
	return res, nil
}

// discover times a fresh node on the registry in dir, from NewNode until
// its Peers() holds a publisher of topic (at most d).
func discover(dir, topic string, d time.Duration) (time.Duration, error) {
	t0 := time.Now()
	n, err := webNode(dir, "web-fresh")
	if err != nil {
		return 0, err
	}
	defer func() { _ = n.Close() }()
	// Peers() is read on each of the node's events (a peer becomes visible
	// with its Joined event), not polled: a sleep under a millisecond
	// rounds up to about one here.
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	evs := n.Events(ctx)
	for !publishes(n.Peers(), topic) {
		if _, ok := <-evs; !ok {
			return 0, fmt.Errorf("a fresh node did not see a publisher of %s within %v", topic, d)
		}
	}
	return time.Since(t0), nil
}

func publishes(peers []colugo.PeerInfo, topic string) bool {
	return slices.ContainsFunc(peers, func(p colugo.PeerInfo) bool {
		return slices.ContainsFunc(p.Topics, func(t colugo.TopicInfo) bool { return t.Name == topic })
	})
}
