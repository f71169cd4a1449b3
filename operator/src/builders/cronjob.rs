//! One CronJob per schedule, running `processor job <kind> [args]`.

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::ResourceExt;
use kube::api::ObjectMeta;

use super::deployment::default_resources;
use super::pod::{container, pod_annotations, pod_spec};
use super::{child_meta, labels};
use crate::crd::{NotificationPlatform, Schedule};

/// Label value of `app.kubernetes.io/component` on schedule CronJobs.
const COMPONENT: &str = "job";

pub fn cron_job_name(platform: &NotificationPlatform, schedule: &Schedule) -> String {
    format!("{}-{}", platform.name_any(), schedule.name)
}

pub fn cron_job(platform: &NotificationPlatform, schedule: &Schedule) -> CronJob {
    let mut command = vec![
        "processor".into(),
        "job".into(),
        schedule.job.as_str().into(),
    ];
    command.extend(schedule.args.iter().cloned());
    let mut main = container(platform, "job", "herald-processor-job", command);
    main.resources = Some(default_resources());
    let mut pod_labels = labels(platform, COMPONENT);
    pod_labels.insert("herald.dev/schedule".into(), schedule.name.clone());
    CronJob {
        metadata: child_meta(platform, cron_job_name(platform, schedule), COMPONENT),
        spec: Some(CronJobSpec {
            schedule: schedule.schedule.clone(),
            time_zone: schedule.time_zone.clone(),
            suspend: Some(schedule.suspend),
            concurrency_policy: Some(schedule.concurrency_policy.as_str().into()),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(3),
            job_template: JobTemplateSpec {
                metadata: None,
                spec: Some(JobSpec {
                    backoff_limit: Some(2),
                    // Finished jobs stay a day for `kubectl logs`, then go.
                    ttl_seconds_after_finished: Some(86_400),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(pod_labels),
                            annotations: Some(pod_annotations(platform, None)),
                            ..ObjectMeta::default()
                        }),
                        spec: Some(pod_spec(vec![main], vec![], Some("OnFailure"))),
                    },
                    ..JobSpec::default()
                }),
            },
            ..CronJobSpec::default()
        }),
        ..CronJob::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::test_fixtures::platform;
    use crate::crd::{ConcurrencyPolicy, JobKind};

    #[test]
    fn runs_processor_job_with_args_on_schedule() {
        let p = platform();
        let cj = cron_job(&p, &p.spec.schedules[0]);
        assert_eq!(cj.metadata.name.as_deref(), Some("demo-nightly-cleanup"));
        let spec = cj.spec.unwrap();
        assert_eq!(spec.schedule, "0 3 * * *");
        assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
        assert_eq!(spec.suspend, Some(false));
        let pod = spec.job_template.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("OnFailure"));
        assert_eq!(
            pod.containers[0].command.as_deref().unwrap(),
            ["processor", "job", "cleanup", "--older-than", "30d"]
        );
    }

    #[test]
    fn carries_time_zone_suspend_and_policy() {
        let p = platform();
        let schedule = Schedule {
            name: "sync".into(),
            schedule: "@hourly".into(),
            job: JobKind::UserSync,
            args: vec![],
            suspend: true,
            concurrency_policy: ConcurrencyPolicy::Replace,
            time_zone: Some("Europe/Berlin".into()),
        };
        let spec = cron_job(&p, &schedule).spec.unwrap();
        assert_eq!(spec.time_zone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(spec.suspend, Some(true));
        assert_eq!(spec.concurrency_policy.as_deref(), Some("Replace"));
        let pod = spec.job_template.spec.unwrap().template.spec.unwrap();
        assert_eq!(
            pod.containers[0].command.as_deref().unwrap(),
            ["processor", "job", "user-sync"]
        );
    }
}
