package model

import "github.com/csat/csat/survey"

// CsatAnalytics is the answer of csatAnalytics. Query is the normalized
// query (explicit dates and timezone), so trend and breakdown, resolved
// only when asked for, cover exactly the same period.
type CsatAnalytics struct {
	Query              survey.AnalyticsQuery
	Period             Period
	TotalSurveysSent   int
	TotalResponses     int
	ResponseRate       float64
	AverageRating      *float64
	SatisfactionScore  float64
	RatingDistribution []RatingCount
	// trend and breakdown were read with the totals (survey.Report), in
	// buckets of trendOf and by breakdownBy; the trend and breakdown
	// fields with those arguments show them.
	trend       []survey.TrendPoint
	trendOf     survey.Granularity
	breakdown   []survey.BreakdownRow
	breakdownBy survey.Dimension
}

// SetTrend keeps the trend read with the totals.
func (a *CsatAnalytics) SetTrend(g survey.Granularity, trend []survey.TrendPoint) {
	a.trend, a.trendOf = trend, g
}

// ReadTrend returns the trend read with the totals if it is in buckets of g.
func (a *CsatAnalytics) ReadTrend(g survey.Granularity) ([]survey.TrendPoint, bool) {
	return a.trend, a.trend != nil && a.trendOf == g
}

// SetBreakdown keeps the breakdown read with the totals.
func (a *CsatAnalytics) SetBreakdown(by survey.Dimension, rows []survey.BreakdownRow) {
	a.breakdown, a.breakdownBy = rows, by
}

// ReadBreakdown returns the breakdown read with the totals if it is by by.
// (A breakdown without rows is nil: its "" dimension tells it was read.)
func (a *CsatAnalytics) ReadBreakdown(by survey.Dimension) ([]survey.BreakdownRow, bool) {
	return a.breakdown, a.breakdownBy != "" && a.breakdownBy == by
}

// NewAnalytics shapes the domain figures, the same REST shows.
func NewAnalytics(a *survey.Analytics, err error) (*CsatAnalytics, error) {
	if err != nil {
		return nil, err
	}
	out := &CsatAnalytics{
		Query:             a.Query,
		Period:            Period{Start: a.Period.Start, End: a.Period.End, Timezone: a.Period.Timezone},
		TotalSurveysSent:  a.Sent,
		TotalResponses:    a.Responses(),
		ResponseRate:      a.ResponseRate(),
		AverageRating:     a.AverageRating(),
		SatisfactionScore: a.SatisfactionScore(),
	}
	for i, n := range a.Distribution {
		out.RatingDistribution = append(out.RatingDistribution, RatingCount{Rating: i + 1, Count: n})
	}
	return out, nil
}

// NewTrend shapes trend buckets.
func NewTrend(points []survey.TrendPoint, err error) ([]TrendPoint, error) {
	if err != nil {
		return nil, err
	}
	out := make([]TrendPoint, len(points))
	for i, p := range points {
		out[i] = TrendPoint{Date: p.Date, SurveysSent: p.Sent, Responses: p.Responses(),
			ResponseRate: p.ResponseRate(), AverageRating: p.AverageRating()}
	}
	return out, nil
}

// NewBreakdown shapes breakdown rows.
func NewBreakdown(rows []survey.BreakdownRow, err error) ([]BreakdownRow, error) {
	if err != nil {
		return nil, err
	}
	out := make([]BreakdownRow, len(rows))
	for i, r := range rows {
		out[i] = BreakdownRow{Key: r.Key, SurveysSent: r.Sent, Responses: r.Responses(), AverageRating: r.AverageRating()}
	}
	return out, nil
}
