package main

import (
	"os"
	_ "time/tzdata" // CronJob timeZone validation without a system zoneinfo

	_ "k8s.io/component-base/logs/json/register"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
