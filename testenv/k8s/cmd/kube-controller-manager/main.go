// Deployments -> ReplicaSets -> Pods, CronJobs -> Jobs, garbage collection by owner references.
package main

import (
	"os"
	_ "time/tzdata" // CronJob timeZone without a system zoneinfo

	_ "k8s.io/component-base/logs/json/register"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
