package httplimit

import (
	"encoding/json"

	"github.com/concurry/concurry"
)

// usageCounter is a provider's usage object as encoding/json reads it.
type usageCounter interface{ counts() counts }

// bodyUsage is the Usage of an API whose answer holds its usage in the
// member "usage", an object of the integer members names that U reads too:
// it scans body, falls back to encoding/json for anything the scan does
// not read exactly, and turns the counts into amounts.
func bodyUsage[U usageCounter](body []byte, names []string, amounts func(*counts, concurry.Amounts) bool) (concurry.Amounts, bool) {
	var v [1][]byte
	var c counts
	if !members(body, usageName, v[:]) || !scanCounts(v[0], names, &c) {
		var r struct {
			Usage U `json:"usage"`
		}
		if json.Unmarshal(body, &r) != nil {
			return nil, false
		}
		c = r.Usage.counts()
	}
	if !c.present {
		return nil, false
	}
	into := concurry.Amounts{}
	return into, amounts(&c, into)
}
