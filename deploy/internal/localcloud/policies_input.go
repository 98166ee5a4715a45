package localcloud

import (
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/deploy/awsmodel"
	"github.com/shoal-dev/shoal/deploy/internal/localcloud/cwstore"
)

func floatp(f qform, k string) (*float64, error) {
	if !f.has(k) {
		return nil, nil
	}
	v, err := strconv.ParseFloat(f.str(k), 64)
	if err != nil {
		return nil, validation("%s (%q) must be a number", k, f.str(k))
	}
	return &v, nil
}

// policyInput reads and validates PutScalingPolicy as the Auto Scaling API
// does, answering ValidationError naming the field.
func policyInput(f qform) (*Policy, error) {
	p := &Policy{Name: f.str("PolicyName"), Group: f.str("AutoScalingGroupName"), Type: f.str("PolicyType"), Enabled: true}
	if p.Type == "" {
		p.Type = "SimpleScaling"
	}
	if e := f.boolp("Enabled"); e != nil {
		p.Enabled = *e
	}
	switch {
	case p.Group == "":
		return nil, validation("AutoScalingGroupName is required")
	case p.Name == "":
		return nil, validation("PolicyName is required")
	case len(p.Name) > 255:
		return nil, validation("PolicyName must be at most 255 characters")
	}
	var err error
	if p.Warmup, err = f.intp("EstimatedInstanceWarmup"); err != nil {
		return nil, err
	}
	if p.Warmup != nil && *p.Warmup < 0 {
		return nil, validation("EstimatedInstanceWarmup (%d) must not be negative", *p.Warmup)
	}
	switch p.Type {
	case "TargetTrackingScaling":
		return p, targetTrackingInput(f, p)
	case "StepScaling":
		return p, stepInput(f, p)
	case "SimpleScaling", "PredictiveScaling":
		return nil, validation("PolicyType %q is not supported by the local cloud (TargetTrackingScaling and StepScaling are)", p.Type)
	}
	return nil, validation("PolicyType %q must be one of SimpleScaling, StepScaling, TargetTrackingScaling, PredictiveScaling", p.Type)
}

func targetTrackingInput(f qform, p *Policy) error {
	const tt = "TargetTrackingConfiguration."
	for _, k := range []string{"AdjustmentType", "StepAdjustments.member.1.ScalingAdjustment", "MetricAggregationType", "MinAdjustmentMagnitude", "ScalingAdjustment", "Cooldown"} {
		if f.has(k) {
			field := strings.TrimSuffix(k, ".member.1.ScalingAdjustment")
			return validation("%s is not valid for a TargetTrackingScaling policy", field)
		}
	}
	target, err := floatp(f, tt+"TargetValue")
	if err != nil {
		return err
	}
	if target == nil {
		return validation("TargetTrackingConfiguration.TargetValue is required for a TargetTrackingScaling policy")
	}
	if *target <= 0 {
		return validation("TargetTrackingConfiguration.TargetValue (%g) must be greater than 0", *target)
	}
	p.Target = *target
	if d := f.boolp(tt + "DisableScaleIn"); d != nil {
		p.DisableScaleIn = *d
	}
	const pre, cm = tt + "PredefinedMetricSpecification.", tt + "CustomizedMetricSpecification."
	hasPre, hasCM := f.has(pre+"PredefinedMetricType"), false
	for k := range f {
		if strings.HasPrefix(k, cm) {
			hasCM = true
		}
	}
	p.Period = awsmodel.DefaultPeriod
	switch {
	case hasPre && hasCM:
		return validation("TargetTrackingConfiguration: specify either PredefinedMetricSpecification or CustomizedMetricSpecification, not both")
	case hasPre:
		p.Predefined = f.str(pre + "PredefinedMetricType")
		m, ok := predefined[p.Predefined]
		if !ok {
			return validation("TargetTrackingConfiguration.PredefinedMetricSpecification.PredefinedMetricType %q must be one of ASGAverageCPUUtilization, ASGAverageNetworkIn, ASGAverageNetworkOut, ALBRequestCountPerTarget", p.Predefined)
		}
		p.ResourceLabel = f.str(pre + "ResourceLabel")
		p.Metric = cwstore.MetricID{Namespace: m.ns, MetricName: m.name, Dimensions: []cwstore.Dimension{{Name: "AutoScalingGroupName", Value: p.Group}}}
		p.Statistic = m.stat
		if p.Predefined == "ALBRequestCountPerTarget" {
			// ResourceLabel is app/<lb>/<id>/targetgroup/<tg>/<id>; the
			// metric's TargetGroup dimension is its target group part.
			i := strings.Index(p.ResourceLabel, "targetgroup/")
			if i < 0 {
				return validation("TargetTrackingConfiguration.PredefinedMetricSpecification.ResourceLabel is required for ALBRequestCountPerTarget, as app/<load-balancer-name>/<id>/targetgroup/<target-group-name>/<id>")
			}
			p.Metric.Dimensions = []cwstore.Dimension{{Name: "TargetGroup", Value: p.ResourceLabel[i:]}}
		}
	case hasCM:
		if f.has(cm + "Metrics.member.1.Id") {
			return validation("TargetTrackingConfiguration.CustomizedMetricSpecification.Metrics (metric math) is not supported by the local cloud; give MetricName, Namespace and Statistic")
		}
		p.Metric = cwstore.MetricID{Namespace: f.str(cm + "Namespace"), MetricName: f.str(cm + "MetricName")}
		p.Statistic, p.Unit = f.str(cm+"Statistic"), f.str(cm+"Unit")
		switch {
		case p.Metric.MetricName == "":
			return validation("TargetTrackingConfiguration.CustomizedMetricSpecification.MetricName is required")
		case p.Metric.Namespace == "":
			return validation("TargetTrackingConfiguration.CustomizedMetricSpecification.Namespace is required")
		}
		switch p.Statistic {
		case "Average", "Minimum", "Maximum", "SampleCount", "Sum":
		default:
			return validation("TargetTrackingConfiguration.CustomizedMetricSpecification.Statistic %q must be one of Average, Minimum, Maximum, SampleCount, Sum", p.Statistic)
		}
		for _, d := range f.structs(cm + "Dimensions.member") {
			p.Metric.Dimensions = append(p.Metric.Dimensions, cwstore.Dimension{Name: f.str(d + "Name"), Value: f.str(d + "Value")})
		}
		per, err := f.intp(cm + "Period")
		if err != nil {
			return err
		}
		if per != nil {
			if !awsmodel.ValidPeriod(*per) {
				return validation("TargetTrackingConfiguration.CustomizedMetricSpecification.Period (%d) must be one of 10, 30, 60", *per)
			}
			p.Period = *per
		}
	default:
		return validation("TargetTrackingConfiguration: one of PredefinedMetricSpecification or CustomizedMetricSpecification is required")
	}
	return nil
}

func stepInput(f qform, p *Policy) error {
	p.AdjustmentType = f.str("AdjustmentType")
	if p.AdjustmentType == "" {
		return validation("AdjustmentType is required for a StepScaling policy")
	}
	if !awsmodel.ValidAdjustmentType(p.AdjustmentType) {
		return validation("AdjustmentType %q must be one of ChangeInCapacity, ExactCapacity, PercentChangeInCapacity", p.AdjustmentType)
	}
	for _, k := range []string{"ScalingAdjustment", "Cooldown", "TargetTrackingConfiguration.TargetValue"} {
		if f.has(k) {
			return validation("%s is not valid for a StepScaling policy", strings.TrimSuffix(k, ".TargetValue"))
		}
	}
	p.MetricAggregationType = f.str("MetricAggregationType")
	switch p.MetricAggregationType {
	case "":
		p.MetricAggregationType = "Average"
	case "Average", "Minimum", "Maximum":
	default:
		return validation("MetricAggregationType %q must be one of Minimum, Maximum, Average", p.MetricAggregationType)
	}
	mag, err := f.intp("MinAdjustmentMagnitude")
	if err != nil {
		return err
	}
	if mag != nil {
		if p.AdjustmentType != awsmodel.PercentChangeInCapacity {
			return validation("MinAdjustmentMagnitude is valid only with AdjustmentType PercentChangeInCapacity")
		}
		if *mag < 1 {
			return validation("MinAdjustmentMagnitude (%d) must be at least 1", *mag)
		}
		p.MinAdjustmentMagnitude = *mag
	}
	for i, s := range f.structs("StepAdjustments.member") {
		adj, err := f.intp(s + "ScalingAdjustment")
		if err != nil {
			return err
		}
		if adj == nil {
			return validation("StepAdjustments.member.%d.ScalingAdjustment is required", i+1)
		}
		st := awsmodel.Step{Adjustment: *adj}
		if st.Lower, err = floatp(f, s+"MetricIntervalLowerBound"); err != nil {
			return err
		}
		if st.Upper, err = floatp(f, s+"MetricIntervalUpperBound"); err != nil {
			return err
		}
		p.Steps = append(p.Steps, st)
	}
	if err := awsmodel.ValidateSteps("StepAdjustments", p.Steps); err != nil {
		return validation("%s", strings.TrimPrefix(err.Error(), awsmodel.ErrSteps.Error()+": "))
	}
	return nil
}

// PutPolicy creates or replaces a policy and, for target tracking, the
// alarms it owns. It returns the stored policy's ARN and alarms.
