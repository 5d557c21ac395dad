package main

import "github.com/spf13/cobra"

// gatewayAdminParent is a stand-in for the gateway command (which runs the
// server, in gateway_cmd.go) holding the administration subcommands, until
// they join the real one.
func (a *app) gatewayAdminParent() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "gateway",
		Short:   "The OpenAI-compatible gateway: API keys and usage",
		GroupID: "consensus",
	}
	cmd.AddCommand(a.gatewayAdminCommands()...)
	return cmd
}
