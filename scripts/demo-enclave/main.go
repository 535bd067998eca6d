// Command demo-enclave is make demo-enclave: a fresh dev cluster in a
// temporary directory, in this process, on free loopback ports, and the
// flow of package enclave/demo against it with bin/trent (trent enclave
// build, proxy and run). It exits non-zero if an expectation fails.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/enclave/demo"
)

func main() {
	trent := flag.String("trent", "bin/trent", "the trent binary")
	keep := flag.Bool("keep", false, "keep the temporary directory")
	flag.Parse()
	if err := run(*trent, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "\ndemo-enclave: FAIL:", err)
		os.Exit(1)
	}
}

func run(trent string, keep bool) error {
	bin, err := filepath.Abs(trent)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s: %w (make build)", trent, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	tmp, err := os.MkdirTemp("", "trent-demo-enclave-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Printf("demo-enclave: working in %s (kept)\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	devDir := filepath.Join(tmp, "dev")
	owner, parent, err := demo.WriteCredentials(devDir, dev.DevRegion)
	if err != nil {
		return err
	}
	fmt.Println("0. A fresh trent dev cluster: three HSM nodes on SoftHSM, one service host, the KMS API on a free port")
	c, err := dev.Start(dev.Options{Dir: devDir, Hosts: 1, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0", RotationInterval: -1},
		func(s string) { fmt.Println("   [dev]", s) })
	if err != nil {
		return err
	}
	defer c.Stop()
	fmt.Printf("   KMS API %s; simulated NSM %s (the domain trusts its root)\n", c.KMSURL, c.SimNSMFile)
	return demo.Run(ctx, demo.Config{Trent: bin, DevDir: devDir, KMSURL: c.KMSURL, Region: dev.DevRegion,
		Owner: owner, Parent: parent, Work: filepath.Join(tmp, "w"), Out: os.Stdout})
}
