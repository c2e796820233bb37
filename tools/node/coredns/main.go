// CoreDNS with only the plugins the local cluster's Corefile uses (cluster/node/coredns.py):
// CoreDNS' own main imports every plugin, cloud DNS providers among them, which made this the
// slowest build of the real node (523 s on 2 cores). The server, the directive order and the
// plugins are CoreDNS' own (github.com/coredns/coredns, pinned in go.mod); this file only picks
// which plugins are compiled in, the way CoreDNS documents for custom builds.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
