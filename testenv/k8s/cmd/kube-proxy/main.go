// Routes Service ClusterIPs (the API server's own `kubernetes` Service among them) to pods.
package main

import (
	"os"

	_ "k8s.io/component-base/logs/json/register"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() {
	os.Exit(cli.Run(app.NewProxyCommand()))
}
