// Command testenv is a multi-call binary holding everything the project's
// integration and node tests need from Kubernetes: an embedded etcd, the upstream
// kube-apiserver, kubectl and kube-controller-manager, and for a real node the
// kubelet, kube-scheduler and kube-proxy.
//
// Why one binary built from source: there is no Docker and no way to download
// release binaries on the machines this project runs on, but the Go module
// proxy is reachable, so we compile the real upstream components ourselves.
// One binary means one build and one cache entry, keyed on go.sum.
//
// Usage: testenv <subcommand> [flags], subcommand one of the keys of subcommands.
// Each subcommand is meant to run as its own process (tests/testenv/starter.py
// starts and stops them). The binary also dispatches on its own name, so a
// symlink called "kubectl" pointing at it works as kubectl.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as upstream mains do
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream mains do
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream mains do
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

// subcommands maps a subcommand name to the function that runs it with
// os.Args already rewritten to look like the upstream binary's own argv.
var subcommands = map[string]func() int{
	"etcd":                    runEtcd,
	"kube-apiserver":          runAPIServer,
	"kubectl":                 runKubectl,
	"kube-controller-manager": runControllerManager,
	"kube-scheduler":          runScheduler,
	"kubelet":                 runKubelet,
	"kube-proxy":              runProxy,
}

func main() {
	name, ok := pickSubcommand()
	if !ok {
		fmt.Fprintln(os.Stderr, "usage: testenv <etcd|kube-apiserver|kubectl|kube-controller-manager|kube-scheduler|kubelet|kube-proxy> [flags]")
		os.Exit(2)
	}
	os.Exit(subcommands[name]())
}

// pickSubcommand chooses the subcommand from argv[0] (symlink use) or argv[1],
// and rewrites os.Args so the upstream command sees a normal argv: cobra and
// kubectl's plugin handling both read os.Args directly.
func pickSubcommand() (string, bool) {
	if base := filepath.Base(os.Args[0]); subcommands[base] != nil {
		return base, true
	}
	if len(os.Args) < 2 || subcommands[os.Args[1]] == nil {
		return "", false
	}
	name := os.Args[1]
	os.Args = append([]string{name}, os.Args[2:]...)
	return name, true
}

func runAPIServer() int {
	return cli.Run(apiserver.NewAPIServerCommand())
}

func runControllerManager() int {
	return cli.Run(controllermanager.NewControllerManagerCommand())
}

func runScheduler() int {
	return cli.Run(scheduler.NewSchedulerCommand())
}

// runKubelet mirrors k8s.io/kubernetes/cmd/kubelet/kubelet.go.
func runKubelet() int {
	return cli.Run(kubelet.NewKubeletCommand(context.Background()))
}

func runProxy() int {
	return cli.Run(proxy.NewProxyCommand())
}

// runKubectl mirrors k8s.io/kubernetes/cmd/kubectl/kubectl.go.
func runKubectl() int {
	logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) //nolint:errcheck
	command := kubectlcmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		kubectlutil.CheckErr(err) // prints the error and exits non-zero
	}
	return 0
}

// etcdFlags are the few knobs the starter needs; everything else keeps
// etcd's defaults for a single-member, throwaway cluster.
type etcdFlags struct {
	dataDir   string
	clientURL string
	peerURL   string
	logLevel  string
	fsync     bool
}

func parseEtcdFlags(args []string) (etcdFlags, error) {
	var f etcdFlags
	fs := flag.NewFlagSet("etcd", flag.ContinueOnError)
	fs.StringVar(&f.dataDir, "data-dir", "", "directory for etcd data (required)")
	fs.StringVar(&f.clientURL, "listen-client-url", "http://127.0.0.1:2379", "client URL to listen on and advertise")
	fs.StringVar(&f.peerURL, "listen-peer-url", "http://127.0.0.1:2380", "peer URL to listen on and advertise")
	fs.StringVar(&f.logLevel, "log-level", "error", "etcd log level (warn logs every request)")
	fs.BoolVar(&f.fsync, "fsync", false, "fsync writes (off by default: test data is throwaway)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if f.dataDir == "" {
		return f, errors.New("--data-dir is required")
	}
	return f, nil
}

func etcdConfig(f etcdFlags) (*embed.Config, error) {
	client, err := url.Parse(f.clientURL)
	if err != nil {
		return nil, fmt.Errorf("--listen-client-url: %w", err)
	}
	peer, err := url.Parse(f.peerURL)
	if err != nil {
		return nil, fmt.Errorf("--listen-peer-url: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Name = "testenv"
	cfg.Dir = f.dataDir
	cfg.LogLevel = f.logLevel
	cfg.UnsafeNoFsync = !f.fsync
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	return cfg, nil
}

// runEtcd starts an embedded single-member etcd and serves until SIGTERM or
// SIGINT, then shuts down cleanly.
func runEtcd() int {
	f, err := parseEtcdFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd:", err)
		return 2
	}
	cfg, err := etcdConfig(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd:", err)
		return 2
	}
	if err := serveEtcd(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "etcd:", err)
		return 1
	}
	return 0
}

func serveEtcd(cfg *embed.Config) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintln(os.Stderr, "etcd: ready to serve client requests on", cfg.ListenClientUrls[0].String())
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		return errors.New("took too long to start")
	case <-ctx.Done():
		return nil
	}
	select {
	case err := <-e.Err():
		return err
	case <-ctx.Done():
		return nil
	}
}
