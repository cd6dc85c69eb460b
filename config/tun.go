package config

import (
	"os/user"
	"strconv"
)

// tunSettings checks the keys of TUN and TAP ports (owner, group) and the
// MSS clamp, which any port may have but TUN ports have by default.
func (c *checker) tunSettings(t string, ifc *Interface, owner, group string, clamp *bool, clampTo int) {
	ifc.Owner, ifc.Group = -1, -1
	tunTap := ifc.Kind == "tun" || ifc.Kind == "tap"
	if owner != "" || group != "" {
		if !tunTap {
			c.bad(t+".owner", "owner and group are for kind \"tun\" or \"tap\"")
			return
		}
	}
	if owner != "" {
		ifc.Owner = c.id(t+".owner", owner, func(s string) (string, error) {
			u, err := user.Lookup(s)
			if err != nil {
				return "", err
			}
			return u.Uid, nil
		})
	}
	if group != "" {
		ifc.Group = c.id(t+".group", group, func(s string) (string, error) {
			g, err := user.LookupGroup(s)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		})
	}
	ifc.ClampMSS = ifc.Kind == "tun"
	if clamp != nil {
		ifc.ClampMSS = *clamp
	}
	if clampTo != 0 {
		if clampTo < 536 || clampTo > 65495 {
			c.bad(t+".clamp_mss_to", "%d is out of range 536..65495", clampTo)
		}
		ifc.ClampMSSTo = clampTo
		if clamp == nil {
			ifc.ClampMSS = true
		}
	}
}

// id is a numeric uid/gid, or a name looked up.
func (c *checker) id(key, s string, lookup func(string) (string, error)) int {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return n
	}
	v, err := lookup(s)
	if err == nil {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	c.bad(key, "%q is neither a number nor a known name", s)
	return -1
}
