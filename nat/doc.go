// Package nat holds ferry's address translation tables (SNAT, DNAT,
// masquerade) as pure logic; the dataplane's hooks apply them.
package nat
