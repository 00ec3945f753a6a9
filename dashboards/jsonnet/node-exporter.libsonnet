// node_exporter 1.5 metric names the dashboards read (a test checks each
// against a running node_exporter's exposition).
{
  cpuSeconds: 'node_cpu_seconds_total',
  memAvailable: 'node_memory_MemAvailable_bytes',
  memTotal: 'node_memory_MemTotal_bytes',
  receiveBytes: 'node_network_receive_bytes_total',
  transmitBytes: 'node_network_transmit_bytes_total',
  receiveDrop: 'node_network_receive_drop_total',
  receivePackets: 'node_network_receive_packets_total',
  transmitPackets: 'node_network_transmit_packets_total',
  filesystemAvail: 'node_filesystem_avail_bytes',
  filesystemSize: 'node_filesystem_size_bytes',
  diskReadBytes: 'node_disk_read_bytes_total',
  diskWrittenBytes: 'node_disk_written_bytes_total',
  diskIoTime: 'node_disk_io_time_seconds_total',
}
