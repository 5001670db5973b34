// Command vcsim serves VMware's vCenter simulator (the `simulator` library of govmomi, as
// Debian's golang-github-vmware-govmomi-dev ships it) on a loopback address, over TLS with
// the certificate it is given, accepting only the user and password it is given.
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
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:24443", "host:port to serve on (loopback)")
	certFile := flag.String("cert", "", "PEM certificate to serve")
	keyFile := flag.String("key", "", "PEM private key of -cert")
	user := flag.String("user", "intercloud", "the one user name that may log in")
	pass := flag.String("password", "", "its password")
	flag.Parse()
	if *certFile == "" || *keyFile == "" || *pass == "" {
		log.Fatal("vcsim: -cert, -key and -password are required")
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
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *pass)}
	server := model.Service.NewServer()

	fmt.Printf("vcsim: serving https://%s%s\n", server.URL.Host, server.URL.Path)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	server.Close()
	model.Remove()
}
