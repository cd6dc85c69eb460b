package dataplane

// Status views are what ferryctl shows. They are snapshots built on request
// from counters the workers keep; building one never stops forwarding.

// InterfaceStatus is one row of `ferryctl show interfaces`.
type InterfaceStatus struct {
	Name      string            `json:"name"`
	Index     int               `json:"index"` // ferry's port index
	Kind      string            `json:"kind"`
	MAC       string            `json:"mac"`
	MTU       int               `json:"mtu"`
	Up        bool              `json:"up"`
	Addresses []string          `json:"addresses"`
	RxPackets uint64            `json:"rx_packets"`
	RxBytes   uint64            `json:"rx_bytes"`
	TxPackets uint64            `json:"tx_packets"`
	TxBytes   uint64            `json:"tx_bytes"`
	Drops     map[string]uint64 `json:"drops"` // reason -> count; only non-zero reasons
}

// RouteStatus is one row of `ferryctl show routes`.
type RouteStatus struct {
	Prefix string `json:"prefix"`
	Type   string `json:"type"` // unicast, local, connected, blackhole, unreachable, prohibit
	Via    string `json:"via,omitempty"`
	Dev    string `json:"dev,omitempty"`
	Metric uint32 `json:"metric"`
	Table  string `json:"table,omitempty"`
}

// NeighborStatus is one row of `ferryctl show neighbors`.
type NeighborStatus struct {
	IP     string `json:"ip"`
	MAC    string `json:"mac,omitempty"`
	Dev    string `json:"dev"`
	State  string `json:"state"` // INCOMPLETE, REACHABLE, STALE, DELAY, PROBE, FAILED, PERMANENT
	Queued int    `json:"queued"`
}

// WorkerStatus is one row of `ferryctl show stats`.
type WorkerStatus struct {
	ID        int               `json:"id"`
	Batches   uint64            `json:"batches"`   // non-empty batches processed
	Packets   uint64            `json:"packets"`   // frames received
	Forwarded uint64            `json:"forwarded"` // frames transmitted
	Local     uint64            `json:"local"`     // frames for ferry itself
	Drops     map[string]uint64 `json:"drops"`     // reason -> count, all ports
	Wakeups   uint64            `json:"wakeups"`   // returns from poll(2)
	AvgBatch  float64           `json:"avg_batch"` // packets per non-empty batch
}

// Status is the read side of a running router, as the control socket uses it.
type Status interface {
	Interfaces() []InterfaceStatus
	Routes() []RouteStatus
	Neighbors() []NeighborStatus
	Workers() []WorkerStatus
}
