package bridge_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/bridge"
	"github.com/colugo-go/colugo/colugotest"
)

// TestTLS: two sites bridged through a NATS server that requires TLS and
// client certificates (NATS.TLS: CA, Cert, Key files in PEM), through the
// bridge's own dialer; a bridge that does not trust the server's CA never
// brings its link up.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, dir, "ca", nil, nil)
	newCert(t, dir, "server", ca, caKey)
	newCert(t, dir, "client", ca, caKey)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	s := startNATS(t, &server.Options{
		TLS: true, TLSVerify: true, TLSTimeout: 2,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
			MinVersion: tls.VersionTLS12},
	})

	cfg := func(site string) bridge.Config {
		return bridge.Config{Site: site, NATS: bridge.NATS{URLs: []string{"tls://" + s.Addr().String()},
			TLS: bridge.TLS{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "client.pem"), Key: filepath.Join(dir, "client-key.pem")}}}
	}
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca2 := cfg("a")
	ca2.Export.Topics = []bridge.Topic{{Name: "pose"}}
	runBridge(t, a, ca2)
	cb := cfg("b")
	cb.Import.Topics = ca2.Export.Topics
	runBridge(t, b, cb)
	got, _ := colugo.Subscribe[int](t.Context(), b.NewNode("viewer"), "pose")
	pub, _ := colugo.NewPublisher[int](a.NewNode("robot"), "pose")
	until(t, "pose over TLS", func() { _ = pub.Publish(t.Context(), 7) }, recv(got, func(v int) bool { return v == 7 }))

	// Its own certificate as the CA: the server's is not trusted.
	bad := cfg("c")
	bad.NATS.TLS.CA = filepath.Join(dir, "client.pem")
	bc, _ := runBridge(t, colugotest.NewNetwork(t), bad)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if bc.Stats().Link == bridge.LinkUp {
			t.Fatal("a bridge that does not trust the server's CA brought its link up")
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

// newCert writes name.pem and name-key.pem in dir: a CA's certificate when
// parent is nil, else one for 127.0.0.1 signed by parent.
func newCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	} else {
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for file, block := range map[string]*pem.Block{
		name + ".pem":     {Type: "CERTIFICATE", Bytes: der},
		name + "-key.pem": {Type: "EC PRIVATE KEY", Bytes: kder},
	} {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}
