package console

import (
	"context"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// alarmEvery spaces the alarm reads: ListAlarms asks CloudWatch, which
// needs not be asked every second for every open page kind.
const alarmEvery = 10 * time.Second

// alarmCache keeps each fleet's alarms between CloudWatch reads. Callers
// serialize access.
type alarmCache struct {
	at  map[string]time.Time
	val map[string][]view.Alarm
}

func (a *alarmCache) get(ctx context.Context, c *Console, fleet string) []view.Alarm {
	if a.at == nil {
		a.at, a.val = map[string]time.Time{}, map[string][]view.Alarm{}
	}
	now := c.cfg.Now()
	if t, ok := a.at[fleet]; ok && now.Sub(t) < alarmEvery {
		return a.val[fleet]
	}
	a.at[fleet] = now
	r, err := c.cfg.API.ListAlarms(ctx, &shoalv1.ListAlarmsRequest{Fleet: fleet})
	if err != nil {
		// No cloud, or CloudWatch did not answer: keep what was known.
		if a.val[fleet] == nil {
			a.val[fleet] = []view.Alarm{}
		}
		return a.val[fleet]
	}
	a.val[fleet] = view.AlarmsOf(r.Alarms)
	return a.val[fleet]
}
