// Command vcsim serves VMware's vCenter simulator (the `simulator` library of govmomi, as
// Debian's golang-github-vmware-govmomi-dev ships it) on a loopback address, over TLS with
// the certificate it is given, accepting only the user it is given and the password in the
// file it is given (a file, not an argument: every local user can read a command line).
// scripts/services.d/80-vcsim.sh builds it offline in GOPATH mode and starts it.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:24443", "host:port to serve on (loopback)")
	certFile := flag.String("cert", "", "PEM certificate to serve")
	keyFile := flag.String("key", "", "PEM private key of -cert")
	user := flag.String("user", "intercloud", "the one user name that may log in")
	passFile := flag.String("password-file", "", "file holding its password (one line)")
	flag.Parse()
	if *certFile == "" || *keyFile == "" || *passFile == "" {
		log.Fatal("vcsim: -cert, -key and -password-file are required")
	}
	passBytes, err := os.ReadFile(*passFile)
	if err != nil {
		log.Fatalf("vcsim: cannot read the password file: %v", err)
	}
	pass := strings.TrimSpace(string(passBytes))
	if pass == "" {
		log.Fatal("vcsim: the password file is empty")
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatalf("vcsim: cannot load the certificate: %v", err)
	}

	// vCenter 6.5 inventory: DC0, a cluster of hosts, a standalone host, VMs, LocalDS_0.
	model := simulator.VPX()
	if err := model.Create(); err != nil {
		log.Fatalf("vcsim: cannot create the inventory: %v", err)
	}
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, pass)}
	server := model.Service.NewServer()

	fmt.Printf("vcsim: serving https://%s%s\n", server.URL.Host, server.URL.Path)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	server.Close()
	model.Remove()
}
