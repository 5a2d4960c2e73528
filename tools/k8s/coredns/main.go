// CoreDNS with only the plugins the local cluster's Corefile uses (coffee_rt.cluster.config):
// cluster names from the API server, nothing forwarded off this machine. The full plugin set
// would pull every cloud provider's SDK into the build.
package main

import (
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/ready"

	"github.com/coredns/coredns/coremain"
)

func main() {
	coremain.Run()
}
