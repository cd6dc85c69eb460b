// Package filter is ferry's stateful packet filter: rule matching and
// connection tracking as pure logic, hooked into the dataplane's
// prerouting, forward and postrouting stages.
package filter
