package iface

import "testing"

// Slots follow the MTU and rings get deep when slots are small; a
// configured geometry is kept.
func TestLayoutBySlotSize(t *testing.T) {
	for _, tc := range []struct {
		cfg                    AFPacketConfig
		mtu                    int
		frameSize, frames, mib int
	}{
		{AFPacketConfig{}, 1500, 2048, 2048, 8},
		{AFPacketConfig{}, 9000, 9216, 565, 10},
		{AFPacketConfig{RingFrames: 256, FrameSize: 69632}, 1500, 69632, 270, 36},
		{AFPacketConfig{RingFrames: 64}, 1500, 2048, 512, 2},
	} {
		lay, err := layout(tc.cfg, tc.mtu)
		if err != nil {
			t.Fatal(err)
		}
		if lay.frameSize != tc.frameSize || lay.frames != tc.frames || 2*lay.blocks != tc.mib {
			t.Errorf("%+v mtu %d: %+v (%d MiB), want slot %d, %d slots, %d MiB", tc.cfg, tc.mtu, lay, 2*lay.blocks, tc.frameSize, tc.frames, tc.mib)
		}
	}
	// A slot holds the MTU frame with a VLAN tag behind the headers.
	for _, mtu := range []int{1500, 1890, 1891, 9000} {
		if s := SlotSize(mtu); rxMacOff+14+4+mtu > s {
			t.Errorf("mtu %d: slot %d too small", mtu, s)
		}
	}
}
