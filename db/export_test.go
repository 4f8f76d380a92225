package db

// MonthsFor exposes monthsFor to the db_test package's table test.
var MonthsFor = monthsFor

// HandoffOnePrepare is the PREPARE of a single email's handoff, for
// TestSendBatchesFindSurveysByKey to explain its plans.
var HandoffOnePrepare = handoffOne.prepare

// UnfoldedDeltas exposes the unfolded deltas' statement, for
// TestUnfoldedDeltasBoundByWatermark to explain its plan.
var UnfoldedDeltas = unfoldedDeltas
