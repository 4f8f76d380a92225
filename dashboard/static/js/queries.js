// Every GraphQL document the dashboard sends. README.md shows the same
// documents as examples of the public API.

// Checks the key at sign-in (needs csat:read).
export const SIGN_IN = `query SignIn {
  csatConfig { enabled }
}`;

// The cards, the trend, the distribution and the breakdowns for a range,
// and the totals of the previous period of the same length (aliased).
export const ANALYTICS = `query Analytics(
  $start: Date!, $end: Date!, $prevStart: Date!, $prevEnd: Date!,
  $timezone: String, $granularity: Granularity!
) {
  current: csatAnalytics(startDate: $start, endDate: $end, timezone: $timezone) {
    period { start end }
    totalSurveysSent
    totalResponses
    responseRate
    averageRating
    satisfactionScore
    ratingDistribution { rating count }
    trend(granularity: $granularity) { date surveysSent responses responseRate averageRating }
    byAgent: breakdown(by: AGENT) { key surveysSent responses averageRating }
    byTeam: breakdown(by: TEAM) { key surveysSent responses averageRating }
    byChannel: breakdown(by: CHANNEL) { key surveysSent responses averageRating }
  }
  previous: csatAnalytics(startDate: $prevStart, endDate: $prevEnd, timezone: $timezone) {
    totalSurveysSent
    totalResponses
    responseRate
    averageRating
    satisfactionScore
  }
}`;

const SURVEY_FIELDS = `id conversationId contactName contactEmail rating feedback status
      sentAt respondedAt agentId teamId channel`;

// One page of the latest surveys; forwards with first/after, backwards with
// last/before.
export const SURVEYS = `query Surveys(
  $first: Int, $after: String, $last: Int, $before: String,
  $filter: SurveyFilter, $orderBy: SurveyOrder
) {
  surveys(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {
    totalCount
    edges { cursor node { ${SURVEY_FIELDS} } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

// Live updates: every status change and rating of the key's tenant.
export const SURVEY_UPDATED = `subscription SurveyUpdated {
  surveyUpdated { ${SURVEY_FIELDS} }
}`;

export const CONFIG = `query Config {
  csatConfig { enabled surveyDelayHours surveyExpiryDays }
}`;

export const UPDATE_CONFIG = `mutation UpdateConfig($input: UpdateCsatConfigInput!) {
  updateCsatConfig(input: $input) { enabled surveyDelayHours surveyExpiryDays }
}`;
