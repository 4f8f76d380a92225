package graph

import (
	"context"
	"errors"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/graph/model"
	"github.com/csat/csat/survey"
)

// The resolvers call one survey.Service method each; these turn GraphQL
// arguments into its inputs and its results into GraphQL types.

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func filterOf(f *model.SurveyFilter) db.SurveyFilter {
	if f == nil {
		return db.SurveyFilter{}
	}
	out := db.SurveyFilter{
		SentFrom: f.SentFrom, SentTo: f.SentTo, Ratings: f.Rating,
		AgentID: str(f.AgentID), TeamID: str(f.TeamID), Channel: str(f.Channel),
		HasFeedback: f.HasFeedback, Search: str(f.Search),
	}
	for _, st := range f.Status {
		out.Statuses = append(out.Statuses, string(st))
	}
	return out
}

var sortOf = map[model.SurveyOrderField]string{
	model.SurveyOrderFieldCreatedAt:   db.SortCreated,
	model.SurveyOrderFieldSentAt:      db.SortSent,
	model.SurveyOrderFieldRespondedAt: db.SortResponded,
	model.SurveyOrderFieldRating:      db.SortRating,
}

func pageArgs(ctx context.Context, first *int, after *string, last *int, before *string, o *model.SurveyOrder) survey.PageArgs {
	a := survey.PageArgs{First: first, After: str(after), Last: last, Before: str(before), Order: survey.NewestFirst}
	if o != nil {
		a.Order = survey.Order{Sort: sortOf[o.Field], Desc: o.Direction != model.OrderDirectionAsc}
	}
	// The flag behind the starting cursor costs a query: only when asked.
	behind := "hasPreviousPage"
	if last != nil {
		behind = "hasNextPage"
	}
	a.SkipBehind = !selected(ctx, "pageInfo", behind)
	a.Columns = nodeColumns(ctx)
	return a
}

// surveyColumns are the columns behind each Survey field.
var surveyColumns = map[string]string{
	"id": "id", "conversationId": "conversation_id", "contactEmail": "contact_email",
	"contactName": "contact_name", "rating": "rating", "feedback": "feedback", "status": "status",
	"scheduledFor": "scheduled_for", "sentAt": "sent_at", "respondedAt": "responded_at",
	"expiresAt": "expires_at", "createdAt": "created_at", "agentId": "agent_id", "teamId": "team_id",
	"channel": "channel",
}

// nodeColumns are the columns the connection's edges.node selection
// shows: a page reads only those (nil: all of them).
func nodeColumns(ctx context.Context) []string {
	oc, sel, ok := selection(ctx, "edges", "node")
	switch {
	case oc == nil:
		return nil // outside GraphQL: everything
	case !ok:
		return []string{} // no node: the cursors' columns alone
	}
	cols := []string{}
	for _, f := range graphql.CollectFields(oc, sel, nil) {
		if f.Name == "__typename" {
			continue
		}
		c, ok := surveyColumns[f.Name]
		if !ok {
			return nil // a field this map does not know: read everything
		}
		cols = append(cols, c)
	}
	return cols
}

// selected reports whether the current field's selection asks for
// path (a field, its subfield, ...), through fragments too.
func selected(ctx context.Context, path ...string) bool {
	_, _, ok := selection(ctx, path...)
	return ok
}

// selection returns the merged selection set under path in the current
// field's selection and whether path is asked for at all; outside a
// GraphQL field everything counts as asked for, with a nil operation.
func selection(ctx context.Context, path ...string) (*graphql.OperationContext, ast.SelectionSet, bool) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !graphql.HasOperationContext(ctx) {
		return nil, nil, true // not inside a GraphQL field: assume everything is wanted
	}
	oc := graphql.GetOperationContext(ctx)
	sel := fc.Field.Selections
	for _, name := range path {
		found := false
		for _, f := range graphql.CollectFields(oc, sel, nil) {
			if f.Name == name {
				// Aliases may ask for a field twice: merge their selections.
				if !found {
					sel = nil
				}
				sel, found = append(sel, f.Selections...), true
			}
		}
		if !found {
			return oc, nil, false
		}
	}
	return oc, sel, true
}

func intakeOf(in model.ScheduleSurveyInput) survey.IntakeInput {
	return survey.IntakeInput{
		ConversationID: in.ConversationID, ContactEmail: in.ContactEmail, ContactName: str(in.ContactName),
		ResolvedAt: in.ResolvedAt, AgentID: str(in.AgentID), TeamID: str(in.TeamID),
		Channel: str(in.Channel), Locale: str(in.Locale),
	}
}

// scheduled is the survey an intake stored or found. While CSAT is
// disabled nothing is stored, which GraphQL (Survey! has no "skipped"
// shape) reports as BAD_USER_INPUT with reason csat_disabled.
func scheduled(res survey.IntakeResult, err error) (*model.Survey, error) {
	if err != nil {
		return nil, err
	}
	if res.Skipped != "" {
		return nil, &errs.Error{Code: errs.Conflict, Message: "CSAT surveys are disabled for this account; nothing was scheduled"}
	}
	return model.NewSurvey(res.Survey), nil
}

func patchOf(in model.UpdateCsatConfigInput) survey.ConfigPatch {
	return survey.ConfigPatch{
		Enabled: in.Enabled, SurveyDelayHours: in.SurveyDelayHours, SurveyExpiryDays: in.SurveyExpiryDays,
		Customer: survey.Customer{
			BrandName: in.BrandName, LogoURL: in.LogoURL, AccentColor: in.AccentColor, DefaultLocale: in.DefaultLocale,
			EmailSubject: in.EmailSubject, EmailMessage: in.EmailMessage, ButtonLabels: listOf(in.ButtonLabels),
		},
	}
}

func wrap(sv *db.Survey, err error) (*model.Survey, error) {
	return model.NewSurvey(sv), err
}

// orNull answers null, not an error, for an id the caller cannot see.
func orNull(sv *db.Survey, err error) (*model.Survey, error) {
	if errors.Is(err, errs.ErrNotFound) {
		return nil, nil
	}
	return model.NewSurvey(sv), err
}

func analyticsQuery(start, end string, tz *string, f *model.AnalyticsFilter) survey.AnalyticsQuery {
	q := survey.AnalyticsQuery{StartDate: start, EndDate: end, Timezone: str(tz)}
	if f != nil {
		q.Filter = survey.AnalyticsFilter{AgentID: str(f.AgentID), TeamID: str(f.TeamID), Channel: str(f.Channel)}
	}
	return q
}

// analytics answers csatAnalytics. The first trend and the first
// breakdown its selection asks for are read with the totals, in one
// statement (survey.Report), and those fields answer from them; the totals
// are the trend's sum when its buckets partition the period.
func analytics(ctx context.Context, svc *survey.Service, q survey.AnalyticsQuery) (*model.CsatAnalytics, error) {
	of := asked(ctx)
	if of.Trend == "" && of.Breakdown == "" {
		return model.NewAnalytics(svc.Analytics(ctx, q))
	}
	rep, err := svc.Report(ctx, q, of)
	if err != nil {
		return nil, err
	}
	out, err := model.NewAnalytics(rep.Analytics, nil)
	if err != nil {
		return nil, err
	}
	out.SetTrend(of.Trend, rep.Trend)
	out.SetBreakdown(of.Breakdown, rep.Breakdown)
	return out, nil
}

// asked returns the totals and the first trend's granularity and first
// breakdown's dimension the current field's selection asks for. An
// argument that does not parse is left to its field, which reports it.
func asked(ctx context.Context) survey.ReportOf {
	of := survey.ReportOf{Totals: true}
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !graphql.HasOperationContext(ctx) {
		return of
	}
	oc := graphql.GetOperationContext(ctx)
	for _, f := range graphql.CollectFields(oc, fc.Field.Selections, csatAnalyticsImplementors) {
		switch {
		case f.Name == "trend" && of.Trend == "":
			var g *model.Granularity
			if v := f.ArgumentMap(oc.Variables)["granularity"]; v != nil {
				g = new(model.Granularity)
				if g.UnmarshalGQL(v) != nil {
					continue
				}
			}
			of.Trend = granularityOf(g)
		case f.Name == "breakdown" && of.Breakdown == "":
			var by model.BreakdownDimension
			if by.UnmarshalGQL(f.ArgumentMap(oc.Variables)["by"]) != nil {
				continue
			}
			of.Breakdown = dimensionOf(by)
		}
	}
	return of
}

// trend answers a trend field: from the buckets read with the totals when
// they are of granularity g, else by reading them.
func trend(ctx context.Context, svc *survey.Service, a *model.CsatAnalytics, g survey.Granularity) ([]model.TrendPoint, error) {
	if points, ok := a.ReadTrend(g); ok {
		return model.NewTrend(points, nil)
	}
	return model.NewTrend(svc.Trend(ctx, a.Query, g))
}

// breakdown answers a breakdown field: from the rows read with the totals
// when they are by the same dimension, else by reading them.
func breakdown(ctx context.Context, svc *survey.Service, a *model.CsatAnalytics, by survey.Dimension) ([]model.BreakdownRow, error) {
	if rows, ok := a.ReadBreakdown(by); ok {
		return model.NewBreakdown(rows, nil)
	}
	return model.NewBreakdown(svc.Breakdown(ctx, a.Query, by))
}

func granularityOf(g *model.Granularity) survey.Granularity {
	if g == nil {
		return survey.Day
	}
	return survey.Granularity(*g) // the enum values are the domain's
}

// streamSurveys subscribes to the caller's tenant's updates and shapes
// each for GraphQL until ctx ends.
func streamSurveys(ctx context.Context, u Updates) (<-chan *model.Survey, error) {
	in, err := u.Subscribe(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan *model.Survey, 1)
	go func() {
		defer close(out)
		for sv := range in {
			select {
			case out <- model.NewSurvey(sv):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func dimensionOf(by model.BreakdownDimension) survey.Dimension {
	return survey.Dimension(by) // the enum values are the domain's
}
