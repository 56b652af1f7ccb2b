package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/colugo-go/colugo/gateway/foxglove"
	"github.com/colugo-go/colugo/gateway/webui"
)

// envWebToken gives colugo web its access token without putting it on
// the command line (where ps shows it).
const envWebToken = "COLUGO_WEB_TOKEN"

func webFlags(fs *flag.FlagSet, c *cli) {
	fs.StringVar(&c.webAddr, "listen", "127.0.0.1:8765", "address to serve the Foxglove WebSocket gateway on (a warning when it is not loopback)")
	fs.BoolVar(&c.allowPublish, "allow-publish", false, "let clients advertise channels and publish on them (Foxglove clientPublish)")
	fs.StringVar(&c.token, "token", "", "access token clients must give (?token=T or Authorization: Bearer T); default: $"+envWebToken+", else none")
	var origins stringList
	fs.Var(&origins, "allow-origin", "a browser origin (scheme://host[:port], * for any) allowed besides the gateway's own; repeatable")
	c.origins = &origins
	fs.IntVar(&c.maxClients, "max-clients", foxglove.DefaultMaxClients, "clients (Foxglove, live pages) served at once; more are refused (HTTP 503)")
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return fmt.Sprint([]string(*l)) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// runWeb serves the node's network to Foxglove, Lichtblick and browsers
// until interrupted.
func runWeb(c *cli, _ *flag.FlagSet, args []string) error {
	if len(args) != 0 {
		return usageErr("web takes no arguments")
	}
	host, port, err := net.SplitHostPort(c.webAddr)
	if err != nil {
		return usageErr("--listen %q: %v", c.webAddr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return usageErr("--listen %q: the port must be a number from 0 to 65535", c.webAddr)
	}
	if c.maxClients < 1 {
		return usageErr("--max-clients %d: at least 1", c.maxClients)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		fmt.Fprintf(c.stderr, "colugo web: warning: listening on %s, beyond this host: anyone who reaches it sees the network", c.webAddr)
		if c.token == "" && os.Getenv(envWebToken) == "" {
			fmt.Fprint(c.stderr, " (and no --token is set)")
		}
		fmt.Fprintln(c.stderr)
	}
	token := c.token
	if token == "" {
		token = os.Getenv(envWebToken)
	}
	// Listen first: an address in use, or not this host's, fails before
	// the node joins the network.
	ln, err := net.Listen("tcp", c.webAddr)
	if err != nil {
		return err
	}
	defer ln.Close()
	n, err := c.node()
	if err != nil {
		return err
	}
	defer n.Close()
	opts := []foxglove.Option{foxglove.WithAllowPublish(c.allowPublish), foxglove.WithMaxClients(c.maxClients)}
	if token != "" {
		opts = append(opts, foxglove.WithToken(token))
	}
	if c.origins != nil && len(*c.origins) > 0 {
		opts = append(opts, foxglove.WithAllowedOrigins(*c.origins...))
	}
	g, err := foxglove.New(n, opts...)
	if err != nil {
		return err
	}
	defer g.Close()
	// Idle keep-alive connections close after a while, and each connection
	// holds a file descriptor the node needs too: past webConns(maxClients)
	// open at once, the rest wait in the kernel's backlog.
	srv := &http.Server{Handler: webHandler(g, webui.Handler()), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(newLimitListener(ln, webConns(c.maxClients))) }()
	fmt.Fprintf(c.stderr, "colugo web: serving http://%s (the live view) and ws://%s (in Foxglove or Lichtblick: Open connection, Foxglove WebSocket, that URL)\n", ln.Addr(), ln.Addr())
	select {
	case err = <-served:
		return err
	case <-c.ctx.Done():
	}
	// Interrupted: the normal way to stop. Clients are closed by g.Close.
	shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = g.Close() // first: hijacked WebSocket connections are not Shutdown's
	if err := srv.Shutdown(shut); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// webHandler sends WebSocket upgrades, on any path, to the gateway and
// everything else to the page.
func webHandler(gateway, page http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			gateway.ServeHTTP(w, r)
			return
		}
		page.ServeHTTP(w, r)
	})
}

// webConns is how many connections colugo web keeps open at once for
// maxClients clients: a browser opens several for one page (its files,
// then the WebSocket), up to six per host.
func webConns(maxClients int) int { return 8*maxClients + 16 }

// limitListener accepts at most n connections open at once: a flood of
// connections (thousands from the LAN, none of them a client) waits in the
// kernel's backlog instead of taking memory and file descriptors.
type limitListener struct {
	net.Listener
	slots  chan struct{}
	closed chan struct{}
	close  func()
}

func newLimitListener(l net.Listener, n int) *limitListener {
	ll := &limitListener{Listener: l, slots: make(chan struct{}, n), closed: make(chan struct{})}
	ll.close = sync.OnceFunc(func() { close(ll.closed) })
	return ll
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}: // a connection closed
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
}

// Close also ends an Accept waiting for a slot.
func (l *limitListener) Close() error {
	l.close()
	return l.Listener.Close()
}

// limitConn gives its slot back once, when closed (by the server, or by
// the gateway after a WebSocket hijacked it).
type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
