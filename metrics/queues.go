package metrics

import (
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
)

// queueCollector reads the asynq queues at scrape time, so the numbers are
// Redis's (the same for every process), not this process's view.
type queueCollector struct {
	insp    *asynq.Inspector
	size    *prometheus.Desc
	latency *prometheus.Desc
	paused  *prometheus.Desc
	up      *prometheus.Desc
}

// WatchQueues registers csat_queue_tasks{queue,state},
// csat_queue_latency_seconds{queue} (age of the oldest pending task),
// csat_queue_paused{queue} and csat_queue_up (1 when Redis answered).
func (m *Metrics) WatchQueues(insp *asynq.Inspector) {
	if m == nil || insp == nil {
		return
	}
	m.Registry.MustRegister(&queueCollector{
		insp: insp,
		size: prometheus.NewDesc("csat_queue_tasks", "asynq tasks by queue and state.",
			[]string{"queue", "state"}, nil),
		latency: prometheus.NewDesc("csat_queue_latency_seconds", "Age of the oldest pending task of each asynq queue.",
			[]string{"queue"}, nil),
		paused: prometheus.NewDesc("csat_queue_paused", "1 when an asynq queue is paused.",
			[]string{"queue"}, nil),
		up: prometheus.NewDesc("csat_queue_up", "1 when the queue statistics could be read from Redis.", nil, nil),
	})
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.latency
	ch <- c.paused
	ch <- c.up
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	queues, err := c.insp.Queues()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	up := 1.0
	for _, q := range queues {
		info, err := c.insp.GetQueueInfo(q)
		if err != nil {
			up = 0
			continue
		}
		for state, n := range map[string]int{
			"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
			"retry": info.Retry, "archived": info.Archived, "completed": info.Completed,
		} {
			ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(n), q, state)
		}
		ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, info.Latency.Seconds(), q)
		paused := 0.0
		if info.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused, q)
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
}
