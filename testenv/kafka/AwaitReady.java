// Exits 0 once the broker answers a metadata request (describeCluster), 1 after the deadline.
// Run as a single-file source program: java -cp 'libs/*' AwaitReady.java BOOTSTRAP SECONDS
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

public class AwaitReady {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[1]));
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "2000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "3000");
        Exception last = null;
        while (System.nanoTime() < deadline) {
            try (Admin admin = Admin.create(props)) {
                int brokers = admin.describeCluster().nodes().get(3, TimeUnit.SECONDS).size();
                if (brokers > 0) {
                    System.out.println("kafka ready at " + bootstrap + " (" + brokers + " broker)");
                    return;
                }
            } catch (Exception e) {
                last = e;
            }
            Thread.sleep(500);
        }
        System.err.println("kafka did not answer a metadata request at " + bootstrap + ": " + last);
        System.exit(1);
    }
}
