// The test node's kubelet, at the control plane's version (see ../../../../scripts/testenv).
package main

import (
	"context"
	"os"

	_ "k8s.io/component-base/logs/json/register"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	os.Exit(cli.Run(app.NewKubeletCommand(context.Background())))
}
