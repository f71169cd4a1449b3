import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;

/**
 * `scripts/testenv topic create|delete NAME [PARTITIONS] | list`: the test broker does not create
 * topics on its own, so benchmarks and manual runs create theirs with Kafka's admin client, and
 * the end-to-end test checks which topics the operator left. Arguments: bootstrap servers,
 * create|delete|list, topic name, partitions (create only).
 */
public class Topic {
    public static void main(String[] args) throws Exception {
        try {
            run(args);
        } catch (java.util.concurrent.ExecutionException e) {
            // The broker's answer (e.g. "Topic 'x' already exists.") without a stack trace.
            System.err.println(e.getCause().getMessage());
            System.exit(1);
        }
    }

    private static void run(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        try (Admin admin = Admin.create(props)) {
            if (args[1].equals("list")) {
                admin.listTopics().names().get(30, TimeUnit.SECONDS).stream().sorted()
                    .forEach(System.out::println);
            } else if (args[1].equals("create")) {
                int partitions = Integer.parseInt(args[3]);
                admin.createTopics(List.of(new NewTopic(args[2], partitions, (short) 1)))
                    .all().get(30, TimeUnit.SECONDS);
            } else {
                admin.deleteTopics(List.of(args[2])).all().get(30, TimeUnit.SECONDS);
            }
        }
    }
}
